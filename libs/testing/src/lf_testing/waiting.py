"""Waiting for eventual effects with a deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aio_pika


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Return as soon as ``check()`` is true; fail with the check's name at the deadline."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {getattr(check, '__name__', check)}")
        await asyncio.sleep(interval)


async def queue_declared(amqp_url: str, name: str, timeout: float = 30.0) -> None:
    """Until queue ``name`` exists: a consumer has declared it and bound it, so a message published
    from now on reaches it (one published before is dropped)."""

    async def declared() -> bool:
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel()
            await channel.declare_queue(name, passive=True)
            return True
        except aio_pika.exceptions.ChannelClosed:
            return False
        finally:
            await connection.close()

    await eventually(declared, timeout=timeout)
