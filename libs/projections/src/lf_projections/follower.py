"""Following the log: the catch-up loop behind async projections and the outbox relay.

A follower handles batches of events in reading order. Each batch runs in one transaction that
first locks the follower's checkpoint row, then applies the effect, then moves the checkpoint: an
event takes effect exactly once, even if two runners ever overlap. One runner per follower is active
across replicas (``pg_try_advisory_lock``); the others wait on standby and take over if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from typing import Protocol

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from lf_eventstore import Checkpoint, RecordedEvent, Wakeup, read_after
from lf_pg.pool import connect

log = structlog.get_logger(__name__)

EVENTS_FOLLOWED = Counter("follower_events_total", "Events handled by a log follower", ["follower"])
FOLLOWER_LAG = Gauge(
    "follower_lag_seconds", "Age of the newest event a follower handled, when it handled it", ["follower"]
)
FOLLOWER_ERRORS = Counter("follower_errors_total", "Failed follower batches (retried)", ["follower"])


class Follower(Protocol):
    name: str

    @property
    def types(self) -> list[str] | None: ...

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None: ...


def advisory_key(schema: str, name: str) -> int:
    # Advisory locks are per database, and services may share one: the schema keeps two services'
    # followers of the same name (each has a "relay") from standing in for each other.
    digest = hashlib.sha256(f"follower:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_checkpoint(conn: asyncpg.Connection, name: str) -> Checkpoint:
    await conn.execute(
        "INSERT INTO follower_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name
    )
    row = await conn.fetchrow(
        "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1 FOR UPDATE", name
    )
    return Checkpoint(row["transaction_id"], row["position"])


async def save_checkpoint(conn: asyncpg.Connection, name: str, at: Checkpoint) -> None:
    await conn.execute(
        "UPDATE follower_checkpoints SET transaction_id = $2, position = $3, updated_at = now()"
        " WHERE name = $1",
        name,
        at.transaction_id,
        at.position,
    )


async def catch_up_once(pool: asyncpg.Pool, follower: Follower, *, batch_size: int = 500) -> int:
    """Handle one batch; returns how many events it handled (0 when caught up)."""
    if (own := getattr(follower, "catch_up_once", None)) is not None:
        # A follower that waits on something outside PostgreSQL (the relay, on the broker) must not
        # do it inside this transaction: it brings its own batch step.
        return await own(pool, batch_size=batch_size)
    async with pool.acquire() as conn, conn.transaction():
        after = await lock_checkpoint(conn, follower.name)
        # Read every type and filter here, so the checkpoint passes events the follower
        # ignores: "caught up" then means "has seen the whole log".
        events = await read_after(conn, after, limit=batch_size)
        if not events:
            return 0
        wanted = set(follower.types) if follower.types is not None else None
        relevant = [e for e in events if wanted is None or e.type in wanted]
        if relevant:
            await follower.handle_batch(conn, relevant)
        last = events[-1]
        await save_checkpoint(conn, follower.name, Checkpoint(last.transaction_id, last.position))
    EVENTS_FOLLOWED.labels(follower.name).inc(len(events))
    FOLLOWER_LAG.labels(follower.name).set(max(0.0, time.time() - last.recorded_at.timestamp()))
    return len(events)


async def catch_up(
    pool: asyncpg.Pool, follower: Follower, *, batch_size: int = 500, timeout: float = 60.0
) -> int:
    """Handle every event committed before the call (tests, CLI); returns how many were handled.

    An empty batch does not mean "done": a transaction still open anywhere in the cluster holds the
    reading horizon back, so this waits until the checkpoint has passed the log's head as it was.
    """
    async with pool.acquire() as conn:
        head = await conn.fetchrow(
            "SELECT transaction_id::text::bigint AS transaction_id, position FROM events"
            " ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1"
        )
    if head is None:
        return 0
    target = Checkpoint(head["transaction_id"], head["position"])
    deadline = time.monotonic() + timeout
    total = 0
    while True:
        total += await catch_up_once(pool, follower, batch_size=batch_size)
        async with pool.acquire() as conn:
            at = await conn.fetchrow(
                "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1", follower.name
            )
        if Checkpoint(at["transaction_id"], at["position"]) >= target:
            return total
        if time.monotonic() > deadline:
            raise TimeoutError(f"{follower.name} did not reach the head of the log in {timeout}s")
        await asyncio.sleep(0.01)


class FollowerRunner:
    """Runs one follower for the life of the process, as the active replica or on standby."""

    def __init__(
        self,
        follower: Follower,
        pool: asyncpg.Pool,
        wakeup: Wakeup,
        *,
        dsn: str,
        schema: str,
        role: str | None = None,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.follower, self.pool, self.wakeup = follower, pool, wakeup
        self._dsn, self._schema, self._role = dsn, schema, role
        self.poll_seconds, self.batch_size = poll_seconds, batch_size
        self._signal = wakeup.subscribe()

    async def _become_active(self) -> asyncpg.Connection:
        key = advisory_key(self._schema, self.follower.name)
        while True:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                conn = await connect(self._dsn, self._schema, role=self._role)
                try:
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                        return conn
                except BaseException:
                    conn.terminate()  # cancelled at shutdown: leave no connection behind
                    raise
                await conn.close()
            await asyncio.sleep(self.poll_seconds)

    async def run(self) -> None:
        while True:
            lock_conn = await self._become_active()
            log.info("follower.active", follower=self.follower.name)
            try:
                await self._follow_while_active(lock_conn)
            finally:
                with contextlib.suppress(Exception):
                    await lock_conn.close()

    async def _follow_while_active(self, lock_conn: asyncpg.Connection) -> None:
        while not lock_conn.is_closed():
            try:
                handled = await catch_up_once(self.pool, self.follower, batch_size=self.batch_size)
            except Exception:
                FOLLOWER_ERRORS.labels(self.follower.name).inc()
                log.warning("follower.batch_failed", follower=self.follower.name, exc_info=True)
                handled = 0
            if handled == 0:
                await self.wakeup.wait(self._signal, self.poll_seconds)
