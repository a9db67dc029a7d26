"""Live run events: ONE listener per process reads new run events and fans them out to every
connected client of their run (push, not a poll per client).

The listener waits on the process's ``Wakeup`` (own appends poke it at once, other processes'
arrive by their throttled NOTIFY, a poll is the fallback), then reads what was appended since its
checkpoint once, in reading order below the horizon (``read_after``), and hands each event to the
subscribers of its stream. A subscriber is a bounded queue: one that falls too far behind is told
to leave (its client resumes with ``Last-Event-ID``), so a slow client never grows memory.

Reading order is not always a stream's version order (two transactions may take their ids in the
other order than the stream's lock), and a client replays from its stream while the listener is
somewhere else in the log; so each client keeps its own cursor (the last version it sent), skips
what it has sent and reads a missing version straight from its stream (``events_after``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import asyncpg
import structlog
from prometheus_client import Counter, Gauge, Histogram

from lf_eventstore import Checkpoint, RecordedEvent, Wakeup, read_after
from lf_eventstore.store import EVENT_COLUMNS, to_recorded
from platform_api.domain.run_events import STREAM_PREFIX, WIRE_TYPES, owner_of

log = structlog.get_logger(__name__)

SSE_CLIENTS = Gauge("sse_clients_connected", "Run event streams this process serves now")
SSE_EVENT_LATENCY = Histogram(
    "sse_event_to_client_seconds",
    "From a run event's recording to its frame written to a live client",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SSE_CLIENTS_DROPPED = Counter("sse_clients_dropped", "Streams ended because their client fell behind")

READ_BATCH = 500
HORIZON_RETRY_SECONDS = 0.005
"""After a wake-up that read nothing (the appending transaction is committed but an older one, in
any schema, still runs and holds the read horizon), look again this soon, doubling while under
``HORIZON_RETRY_UNTIL_SECONDS``; then the poll (a wake-up may also be for events of no run)."""
HORIZON_RETRY_UNTIL_SECONDS = 0.5
DROP_GRACE_SECONDS = 1.0
"""How long a client that fell behind has to end its stream before its connection is cut."""
CLIENT_SWEEP_SECONDS = 1.0
"""How often the listener looks for clients whose connection closed while their stream was quiet
(a write would notice, but a quiet stream writes only its keep-alive)."""


class HubFull(Exception):
    """The process serves ``max_clients`` streams already."""


class Subscriber:
    """One connected client's queue of live events of its run. Small on purpose: thousands exist."""

    __slots__ = (
        "_drop",
        "_dropping",
        "_gone",
        "_limit",
        "closed",
        "fell_behind",
        "pending",
        "ready",
        "stream_id",
    )

    def __init__(
        self,
        stream_id: str,
        limit: int,
        gone: Callable[[], bool],
        drop: Callable[[], None] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.pending: deque[RecordedEvent] = deque()
        self.ready = asyncio.Event()
        self.closed = False
        self.fell_behind = False
        self._limit = limit
        self._gone = gone
        self._drop = drop
        self._dropping: asyncio.TimerHandle | None = None

    def offer(self, event: RecordedEvent) -> None:
        if self.closed:
            return
        if len(self.pending) >= self._limit:
            self.fell_behind = True
            self.pending.clear()  # it leaves: what it missed is in its stream
            self.close()  # its stream ends at its next turn, cleanly
            if self._drop is not None:
                # Unless it is stuck in a write the client does not read (holding the answer's
                # buffer): then its connection is cut, a little later.
                self._dropping = asyncio.get_running_loop().call_later(DROP_GRACE_SECONDS, self._drop)
            return
        self.pending.append(event)
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    def gone(self) -> bool:
        return self._gone()

    def left(self) -> None:
        """Its stream has ended: its connection is no longer ours to cut (it may serve another
        request)."""
        if self._dropping is not None:
            self._dropping.cancel()


class RunEventsHub:
    """The process's one listener and its subscribers (``app[RUN_EVENTS]``)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        wakeup: Wakeup,
        *,
        max_clients: int,
        buffer_events: int,
        poll_seconds: float,
    ) -> None:
        self.pool, self.wakeup = pool, wakeup
        self.max_clients, self.buffer_events, self.poll_seconds = max_clients, buffer_events, poll_seconds
        self._streams: dict[str, set[Subscriber]] = {}
        self._watchers: dict[str, set[Callable[[RecordedEvent], None]]] = {}
        self.count = 0
        self._checkpoint: Checkpoint | None = None
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._signal = self.wakeup.subscribe()
        async with self.pool.acquire() as conn:
            self._checkpoint = await head_checkpoint(conn)
        self._task = asyncio.create_task(self._listen(), name="run-events-listener")
        self._sweeper = asyncio.create_task(self._sweep(), name="run-events-sweeper")

    def subscribe(
        self, stream_id: str, gone: Callable[[], bool], drop: Callable[[], None] | None = None
    ) -> Subscriber:
        """``gone``: whether the client's connection closed; ``drop``: close it (it fell behind)."""
        if self.count >= self.max_clients:
            raise HubFull()
        subscriber = Subscriber(stream_id, self.buffer_events, gone, drop)
        self._streams.setdefault(stream_id, set()).add(subscriber)
        self.count += 1
        SSE_CLIENTS.inc()
        return subscriber

    def watch(self, stream_id: str, seen: Callable[[RecordedEvent], None]) -> Callable[[], None]:
        """Calls ``seen`` with each new event of the stream (a run worker watching its run for a
        cancel; not a client: no buffer, not counted); returns the function that stops it."""
        self._watchers.setdefault(stream_id, set()).add(seen)

        def unwatch() -> None:
            watchers = self._watchers.get(stream_id)
            if watchers is not None:
                watchers.discard(seen)
                if not watchers:
                    del self._watchers[stream_id]

        return unwatch

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._streams.get(subscriber.stream_id)
        if subscribers is None or subscriber not in subscribers:
            return
        subscribers.discard(subscriber)
        subscriber.left()
        if not subscribers:
            del self._streams[subscriber.stream_id]
        self.count -= 1
        SSE_CLIENTS.dec()
        if subscriber.fell_behind:
            SSE_CLIENTS_DROPPED.inc()

    def end_all(self) -> None:
        """The server stops: every stream ends now (clients resume elsewhere)."""
        for subscribers in self._streams.values():
            for subscriber in subscribers:
                subscriber.close()

    async def close(self) -> None:
        self.end_all()
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def dispatch(self, events: list[RecordedEvent]) -> None:
        for event in events:
            for subscriber in self._streams.get(event.stream_id, ()):
                subscriber.offer(event)
            for seen in list(self._watchers.get(event.stream_id, ())):
                seen(event)

    async def _listen(self) -> None:
        wait = self.poll_seconds
        while True:
            woken = await self.wakeup.wait(self._signal, wait)
            try:
                found = await self._read_new()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("run_events.read_failed", error=repr(error))
                wait = self.poll_seconds
                continue
            if found or not (woken or wait < self.poll_seconds):
                wait = self.poll_seconds  # read something, or a quiet poll
            elif woken:
                # Woken, yet nothing below the horizon: the append committed, but an older
                # transaction still runs. Look again soon, backing off; then back to the poll.
                wait = min(self.poll_seconds, HORIZON_RETRY_SECONDS)
            else:
                wait = wait * 2 if wait * 2 <= HORIZON_RETRY_UNTIL_SECONDS else self.poll_seconds

    async def _read_new(self) -> bool:
        assert self._checkpoint is not None
        found = False
        while True:
            async with self.pool.acquire() as conn:
                events = await read_after(conn, self._checkpoint, limit=READ_BATCH, types=list(WIRE_TYPES))
            if not events:
                return found
            found = True
            last = events[-1]
            self._checkpoint = Checkpoint(last.transaction_id, last.position)
            self.dispatch([e for e in events if e.stream_id.startswith(STREAM_PREFIX)])
            if len(events) < READ_BATCH:
                return found

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(CLIENT_SWEEP_SECONDS)
            for subscribers in list(self._streams.values()):
                for subscriber in subscribers:
                    if subscriber.gone():
                        subscriber.close()


async def head_checkpoint(conn: asyncpg.Connection) -> Checkpoint:
    """Where the log stands now below the horizon: a listener starting here misses nothing new."""
    row = await conn.fetchrow(
        "SELECT transaction_id::text::bigint AS transaction_id, position FROM events"
        " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1"
    )
    return Checkpoint(0, 0) if row is None else Checkpoint(row["transaction_id"], row["position"])


class RunHead(NamedTuple):
    owner: str | None
    version: int
    last_type: str


async def run_head(pool: asyncpg.Pool, stream_id: str) -> RunHead | None:
    """The run's owner, its stream's version and latest event's type; None: no such stream."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT s.version, first.type, first.data, last.type AS last_type FROM streams s"
            " JOIN events first ON first.stream_id = s.stream_id AND first.version = 1"
            " JOIN events last ON last.stream_id = s.stream_id AND last.version = s.version"
            " WHERE s.stream_id = $1",
            stream_id,
        )
    if row is None:
        return None
    data: dict[str, Any] = row["data"]
    return RunHead(owner_of(row["type"], data), row["version"], row["last_type"])


async def events_after(
    pool: asyncpg.Pool, stream_id: str, after_version: int, *, up_to: int | None = None, limit: int = 500
) -> list[RecordedEvent]:
    """The stream's committed events after ``after_version`` (up to ``up_to``), in version order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2"
            " AND ($3::int IS NULL OR version <= $3) ORDER BY version LIMIT $4",
            stream_id,
            after_version,
            up_to,
            limit,
        )
    return [to_recorded(row) for row in rows]
