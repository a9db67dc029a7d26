"""Wakes log readers when their schema appends (LISTEN), with a poll as the safety net."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from lf_pg.pool import connect

log = structlog.get_logger(__name__)


class Wakeup:
    """One LISTEN connection per process, any number of readers.

    Each reader ``subscribe()``s once and then ``await wakeup.wait(signal, poll_seconds)``. The first
    wait starts a task that keeps the LISTEN connection: when it cannot connect or listen, or the
    connection drops, it retries with capped backoff (logging the failure once per outage) instead
    of leaving readers to the poll until some later wait happens to reconnect. Readers are woken
    whenever the listener (re)connects, since notifications sent meanwhile are lost.
    """

    def __init__(
        self,
        dsn: str,
        schema: str,
        *,
        role: str | None = None,
        first_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn, self._schema, self._role = dsn, schema, role
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self._signals: list[asyncio.Event] = []
        self._conn: asyncpg.Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while LISTEN is in place (tests, health)

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

    def _listen(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_listening(), name=f"{self.channel}-listen")

    async def _keep_listening(self) -> None:
        delay, failing = self.first_backoff, False
        while True:
            lost = asyncio.Event()
            try:
                conn = await connect(self._dsn, self._schema, role=self._role)
                self._conn = conn
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self.channel, lambda *_: self.poke())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                await self._drop_connection()
                if not failing:
                    log.warning("wakeup.listen_failed", channel=self.channel, error=repr(exc))
                    failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            if failing:
                log.info("wakeup.listening_again", channel=self.channel)
            delay, failing = self.first_backoff, False
            self.listening.set()
            self.poke()  # anything appended while we were not listening
            await lost.wait()
            self.listening.clear()
            await self._drop_connection()
            log.warning("wakeup.connection_lost", channel=self.channel)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def wait(self, signal: asyncio.Event, timeout: float) -> None:
        self._listen()
        # asyncio.timeout, not wait_for: under Python 3.11 wait_for returns the result instead of
        # raising CancelledError when a NOTIFY and the shutdown's cancellation land together, and
        # the follower then polled for ever (the CI hang of issue 6).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await signal.wait()
        signal.clear()

    async def close(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            # gather, not suppress(CancelledError): a cancellation of the caller must go on.
            await asyncio.gather(keeper, return_exceptions=True)
        conn, self._conn = self._conn, None
        self.listening.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()
