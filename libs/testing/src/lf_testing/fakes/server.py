"""What every simple fake outside system shares: an aiohttp app on 127.0.0.1 (an ephemeral port
unless one is given) that can be told to hang until it recovers or closes."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Self

from aiohttp import web


class FakeServer:
    def __init__(self) -> None:
        self._hanging = False
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    def hang(self) -> None:
        """Never answer (until ``recover()`` or ``close()``)."""
        self._hanging = True

    def recover(self) -> None:
        """Answer again; a subclass also resets its own failures, then calls this."""
        self._hanging = False
        self._release.set()
        self._release = asyncio.Event()

    async def hang_if_told(self) -> None:
        if self._hanging:
            await self._release.wait()

    async def start(self, port: int = 0) -> Self:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def serve_forever(self, port: int, banner: str) -> None:
        """Run as a process of its own (``make dev``): start on ``port``, print ``banner`` (its
        ``{url}`` filled in), serve until stopped."""
        await self.start(port)
        print(banner.format(url=self.url), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; None when it has none or it is not JSON (the fake answers that)."""
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
