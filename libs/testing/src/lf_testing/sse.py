"""Reading a server-sent-events answer in a test, event by event as it arrives.

    async for event in sse.events(response):   # an aiohttp ClientResponse
        if event.name == "token": ...

Each event is its ``event:`` name (``message`` when it has none) and its ``data:`` lines joined and
parsed as JSON; comments (``: keep-alive``) are skipped. Stop iterating (and ``response.close()``)
to leave mid-stream as a client that goes away does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Event:
    name: str
    data: Any


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    name, data = "message", []
    async for raw in response.content:  # line by line
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


async def read_all(response: aiohttp.ClientResponse) -> list[Event]:
    """Every event, once the answer ended."""
    return [event async for event in events(response)]
