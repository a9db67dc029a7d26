"""Wakes log readers when their schema appends (LISTEN), with a poll as the safety net."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from lf_pg.pool import connect


class Wakeup:
    """One LISTEN connection per process, any number of readers.

    Each reader ``subscribe()``s once and then ``await wakeup.wait(signal, poll_seconds)``. If the
    listening connection drops, readers still progress at the poll interval, and the listener
    reconnects on the next wait.
    """

    def __init__(self, dsn: str, schema: str, *, role: str | None = None) -> None:
        self._dsn, self._schema, self._role = dsn, schema, role
        self._signals: list[asyncio.Event] = []
        self._conn: asyncpg.Connection | None = None
        self._connecting = asyncio.Lock()

    @property
    def channel(self) -> str:
        return f"{self._schema}_events"

    def subscribe(self) -> asyncio.Event:
        signal = asyncio.Event()
        self._signals.append(signal)
        return signal

    def poke(self) -> None:
        for signal in self._signals:
            signal.set()

    async def _listen(self) -> None:
        async with self._connecting:
            if self._conn is not None and not self._conn.is_closed():
                return
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                self._conn = await connect(self._dsn, self._schema, role=self._role)
                await self._conn.add_listener(self.channel, lambda *_: self.poke())

    async def wait(self, signal: asyncio.Event, timeout: float) -> None:
        await self._listen()
        # asyncio.timeout, not wait_for: under Python 3.11 wait_for returns the result instead of
        # raising CancelledError when a NOTIFY and the shutdown's cancellation land together, and
        # the follower then polled for ever (the CI hang of issue 6).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await signal.wait()
        signal.clear()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
