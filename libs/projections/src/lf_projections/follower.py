"""Following the log: the catch-up loop behind async projections and the outbox relay.

A follower handles batches of events in reading order. Each batch runs in one transaction that
first locks the follower's checkpoint row, then applies the effect, then moves the checkpoint: an
event takes effect exactly once, even if two runners ever overlap. One runner per follower is active
across replicas (it holds the follower's lease row); the others wait on standby and take over once
its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from typing import Protocol

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from lf_eventstore import Checkpoint, RecordedEvent, Wakeup, appends_noted, read_after

log = structlog.get_logger(__name__)

EVENTS_FOLLOWED = Counter("follower_events_total", "Events handled by a log follower", ["follower"])
FOLLOWER_LAG = Gauge(
    "follower_lag_seconds", "Age of the newest event a follower handled, when it handled it", ["follower"]
)
FOLLOWER_ERRORS = Counter("follower_errors_total", "Failed follower batches (retried)", ["follower"])

RECHECK_FIRST_SECONDS = 0.005
"""A wake-up that finds nothing new: the writer's commit is behind the reading horizon (an older
transaction is still open somewhere), so look again after this, doubling, rather than a whole poll."""


class Follower(Protocol):
    name: str

    @property
    def types(self) -> list[str] | None: ...

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None: ...


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


class Lease:
    """A follower's row in ``follower_leases``: taken when free or expired, renewed by its holder.

    Each call is one short statement on the pool (no transaction stays open, no dedicated
    connection), on the database's clock, so replicas with skewed clocks agree on expiry.
    """

    def __init__(self, pool: asyncpg.Pool, name: str, *, seconds: float) -> None:
        self.pool, self.name, self.seconds = pool, name, seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def take(self) -> bool:
        """Take the lease, or renew it if we hold it; False while another holder's is running."""
        return bool(
            await self.pool.fetchval(
                "INSERT INTO follower_leases AS l (name, holder, expires_at)"
                " VALUES ($1, $2, now() + make_interval(secs => $3))"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE l.holder = excluded.holder OR l.expires_at < now()"
                " RETURNING true",
                self.name,
                self.holder,
                self.seconds,
                timeout=self.seconds / 3,
            )
        )

    async def release(self) -> None:
        """Let a standby take over now rather than at expiry."""
        await self.pool.execute(
            "UPDATE follower_leases SET expires_at = now() WHERE name = $1 AND holder = $2",
            self.name,
            self.holder,
            timeout=self.seconds / 3,
        )


class FollowerRunner:
    """Runs one follower for the life of the process, as the active replica or on standby.

    The active replica holds the follower's lease and renews it every third of its length; a
    standby tries to take it every ``poll_seconds`` and does once it has expired (its holder died or
    lost the database). If two runners ever overlap (a holder that lost its lease is finishing a
    batch), the checkpoint row lock in ``catch_up_once`` still applies each event once.

    ``dsn``, ``schema`` and ``role`` are no longer used (the lease needs no connection of its own);
    they are accepted so that existing callers keep working.
    """

    def __init__(
        self,
        follower: Follower,
        pool: asyncpg.Pool,
        wakeup: Wakeup,
        *,
        dsn: str | None = None,
        schema: str | None = None,
        role: str | None = None,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
        lease_seconds: float = 5.0,
    ) -> None:
        self.follower, self.pool, self.wakeup = follower, pool, wakeup
        self.poll_seconds, self.batch_size = poll_seconds, batch_size
        self.lease = Lease(pool, follower.name, seconds=lease_seconds)
        self._signal = wakeup.subscribe()
        self._last_error: str | None = None

    async def _try_lease(self) -> bool:
        try:
            taken = await self.lease.take()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            if repr(error) != self._last_error:  # once per kind of trouble, not once per poll
                log.warning("follower.lease_unavailable", follower=self.follower.name, error=repr(error))
            self._last_error = repr(error)
            return False
        self._last_error = None
        return taken

    async def run(self) -> None:
        while True:
            if await self._try_lease():
                log.info("follower.active", follower=self.follower.name, holder=self.lease.holder)
                try:
                    await self._follow_while_leased()
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.lease.release(), self.lease.seconds / 3)
                log.info("follower.standby", follower=self.follower.name)
            await asyncio.sleep(self.poll_seconds)

    async def _keep_lease(self) -> None:
        """Renew until the lease is lost (taken over) or cannot be confirmed before it expires."""
        held_until = time.monotonic() + self.lease.seconds
        while True:
            await asyncio.sleep(self.lease.seconds / 3)
            asked_at = time.monotonic()
            try:
                if not await self.lease.take():
                    log.warning("follower.lease_lost", follower=self.follower.name)
                    return
                held_until = asked_at + self.lease.seconds
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if time.monotonic() >= held_until:
                    log.warning("follower.lease_expired", follower=self.follower.name)
                    return

    async def _follow_while_leased(self) -> None:
        keeper = asyncio.create_task(self._keep_lease(), name=f"{self.follower.name}.lease")
        recheck: float | None = None  # while set, the next look comes this soon instead of a poll
        woken = False
        try:
            while not keeper.done():
                try:
                    with appends_noted() as note:
                        handled = await catch_up_once(self.pool, self.follower, batch_size=self.batch_size)
                    if note.appended:  # the batch's handler appended, and the batch has committed
                        self.wakeup.appended()
                except Exception:
                    FOLLOWER_ERRORS.labels(self.follower.name).inc()
                    log.warning("follower.batch_failed", follower=self.follower.name, exc_info=True)
                    handled = 0
                if handled:
                    recheck, woken = None, False
                elif not keeper.done():
                    if woken:  # for nothing yet: the writer's commit is behind the reading horizon
                        recheck = RECHECK_FIRST_SECONDS
                    elif recheck is not None:  # still nothing: back off, until the poll takes over
                        recheck = recheck * 2 if recheck * 2 < self.poll_seconds else None
                    woken = await self.wakeup.wait(self._signal, recheck or self.poll_seconds)
        finally:
            keeper.cancel()
            # gather, not suppress(CancelledError): a cancellation of this task must go on.
            await asyncio.gather(keeper, return_exceptions=True)
