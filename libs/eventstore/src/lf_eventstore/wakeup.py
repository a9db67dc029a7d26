"""Wakes log readers when their schema appends, without a lock on every commit.

No NOTIFY inside command transactions (migrations/0004): PostgreSQL serialises every notifying
commit of the whole cluster on one lock, so a trigger that notified on each append made every
appending commit wait for every other. Instead:

- a writer's own process wakes its readers directly: ``Wakeup.appended()``, called after a command
  of this process has COMMITted, pokes them at once;
- other processes are told by a NOTIFY of their own, sent by the same call from this process's
  LISTEN connection in an autocommit statement of its own (never in a command's transaction), at
  most one per ``WAKEUP_NOTIFY_INTERVAL_MS`` (5 ms by default): a burst of appends costs a few
  notifications, and another process's readers wait at most that long plus one round trip;
- readers also poll (``wait``'s timeout), so a lost notification or listener only slows them down.

A transaction the command runner does not own (a consumer's handler, a follower's batch) appends
through a runner bound to its connection; that runner only ``note_append()``s, and the owner calls
``appended()`` after its COMMIT when ``appends_noted()`` says something was appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar

import asyncpg
import structlog
from prometheus_client import Counter

from lf_pg.pool import connect

log = structlog.get_logger(__name__)

WAKEUP_NOTIFICATIONS = Counter(
    "wakeup_notifications_total", "NOTIFYs sent to wake other processes' log readers", ["channel"]
)

NOTIFY_INTERVAL_ENV = "WAKEUP_NOTIFY_INTERVAL_MS"
DEFAULT_NOTIFY_INTERVAL_MS = 5.0


def notify_interval_seconds() -> float:
    return float(os.environ.get(NOTIFY_INTERVAL_ENV, DEFAULT_NOTIFY_INTERVAL_MS)) / 1000


class AppendNote:
    """Whether a transaction owned by the caller appended (set by ``note_append``)."""

    appended = False


_NOTE: ContextVar[AppendNote | None] = ContextVar("lf_eventstore_append_note", default=None)


def note_append() -> None:
    """An append happened in a transaction this code does not own: its owner wakes readers after
    COMMIT (``appends_noted``). Without an owner collecting, nothing to do (the poll finds it)."""
    if (note := _NOTE.get()) is not None:
        note.appended = True


@contextlib.contextmanager
def appends_noted() -> Iterator[AppendNote]:
    """Around a transaction the caller owns: ``note.appended`` tells, after COMMIT, whether anything
    in it appended, so the caller calls ``Wakeup.appended()`` then (and not when it rolled back)."""
    note = AppendNote()
    token = _NOTE.set(note)
    try:
        yield note
    finally:
        _NOTE.reset(token)


class Wakeup:
    """One per process: one LISTEN connection, any number of readers, every writer.

    Each reader ``subscribe()``s once and then ``await wakeup.wait(signal, poll_seconds)``. The first
    wait (or append) starts a task that keeps the LISTEN connection: when it cannot connect or
    listen, or the connection drops, it retries with capped backoff (logging the failure once per
    outage) instead of leaving readers to the poll until some later wait happens to reconnect.
    Readers are woken whenever the listener (re)connects, since notifications sent meanwhile are
    lost. Notifications this process sent itself are ignored: ``appended()`` woke its readers already.
    """

    def __init__(
        self,
        dsn: str,
        schema: str,
        *,
        role: str | None = None,
        first_backoff: float = 0.1,
        max_backoff: float = 5.0,
        notify_interval: float | None = None,
    ) -> None:
        self._dsn, self._schema, self._role = dsn, schema, role
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.notify_interval = notify_interval_seconds() if notify_interval is None else notify_interval
        self._signals: list[asyncio.Event] = []
        self._conn: asyncpg.Connection | None = None
        self._server_pid: int | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._notify_wanted = False
        self._last_notify = float("-inf")
        self.notifications_sent = 0  # tests: how many NOTIFYs the throttle let through
        self.notifications_heard = 0  # tests: other processes' NOTIFYs that woke our readers
        self.listening = asyncio.Event()  # set while LISTEN is in place (tests, health)

    @property
    def channel(self) -> str:
        return f"{self._schema}_events"

    def subscribe(self) -> asyncio.Event:
        signal = asyncio.Event()
        self._signals.append(signal)
        return signal

    def poke(self) -> None:
        """Wake this process's readers."""
        for signal in self._signals:
            signal.set()

    def appended(self) -> None:
        """A transaction of this process that appended has committed: wake its readers now, and
        other processes' with the next throttled NOTIFY."""
        self.poke()
        self._notify_wanted = True
        self._listen()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_notifications(), name=f"{self.channel}-notify")

    async def _send_notifications(self) -> None:
        """At most one NOTIFY per ``notify_interval``: the first append of a quiet spell is sent at
        once, those that follow within the interval together at its end."""
        loop = asyncio.get_running_loop()
        while self._notify_wanted:
            if (pause := self._last_notify + self.notify_interval - loop.time()) > 0:
                await asyncio.sleep(pause)
            self._notify_wanted = False
            if not self.listening.is_set():
                # No connection now (starting, or an outage): the other processes' polls find it,
                # and the listener's reconnection wakes our own readers.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(self.max_backoff, 1.0)):
                        await self.listening.wait()
            if (conn := self._conn) is None:
                continue
            try:
                # Autocommit, on the LISTEN connection: no command's transaction waits for the
                # notify queue's lock, and the pool's connections stay the commands'.
                await conn.execute(f'NOTIFY "{self.channel}"')
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.debug("wakeup.notify_failed", channel=self.channel, error=repr(error))
                continue  # the keeper notices a lost connection; readers elsewhere poll
            self._last_notify = loop.time()
            self.notifications_sent += 1
            WAKEUP_NOTIFICATIONS.labels(self.channel).inc()

    def _listen(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_listening(), name=f"{self.channel}-listen")

    def _notified(self, _conn: object, pid: int, _channel: str, _payload: str) -> None:
        if pid != self._server_pid:  # our own: appended() woke our readers already
            self.notifications_heard += 1
            self.poke()

    async def _keep_listening(self) -> None:
        delay, failing = self.first_backoff, False
        while True:
            lost = asyncio.Event()
            try:
                conn = await connect(self._dsn, self._schema, role=self._role)
                self._conn, self._server_pid = conn, conn.get_server_pid()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self.channel, self._notified)
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

    async def wait(self, signal: asyncio.Event, timeout: float) -> bool:
        """Until ``signal`` is set (True) or ``timeout`` seconds have passed (False)."""
        self._listen()
        woken = False
        # asyncio.timeout, not wait_for: under Python 3.11 wait_for returns the result instead of
        # raising CancelledError when a NOTIFY and the shutdown's cancellation land together, and
        # the follower then polled for ever (the CI hang of issue 6).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                woken = await signal.wait()
        signal.clear()
        return woken

    async def close(self) -> None:
        for name in ("_sender", "_keeper"):
            task = getattr(self, name)
            setattr(self, name, None)
            if task is not None:
                task.cancel()
                # gather, not suppress(CancelledError): a cancellation of the caller must go on.
                await asyncio.gather(task, return_exceptions=True)
        conn, self._conn = self._conn, None
        self.listening.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()
