"""Following the log with the batch outside the checkpoint's transaction.

A plain follower handles its batch inside the transaction that moves its checkpoint, which is what
makes each event take effect once. A follower that wants its batch's events handled in transactions
of their own (several at once, on several connections: the billing delivery processor) cannot: it
opts in by giving itself ``catch_up_once = catch_up_outside`` and an ``handle_batch_on_pool(pool,
events)``. Per batch this then

1. reads the checkpoint and the next events (autocommit statements, no transaction left open),
2. calls ``handle_batch_on_pool`` with the pool and the events the follower wants,
3. moves the checkpoint once that returned, in one statement: a compare-and-set on the checkpoint it
   read, so an overlapping runner that got further is never moved backwards.

A batch that raises leaves the checkpoint where it was, and the whole batch is handled again. So the
checkpoint no longer gives exactly-once: the follower must, per event, e.g. by a claim in the event's
own transaction that finds the event already handled (``DeliveryProcessor``). The outbox relay works
the same way for the same reason (it waits on the broker), with its own copy of these steps.
"""

from __future__ import annotations

import time
from typing import Protocol

import asyncpg
import structlog

from lf_eventstore import Checkpoint, RecordedEvent, read_after
from lf_projections.follower import EVENTS_FOLLOWED, FOLLOWER_LAG

log = structlog.get_logger(__name__)


class FollowerOnPool(Protocol):
    name: str

    @property
    def types(self) -> list[str] | None: ...

    async def handle_batch_on_pool(self, pool: asyncpg.Pool, events: list[RecordedEvent]) -> None:
        """Handle every event, each with an effect that is idempotent on its own; raise to have the
        whole batch handled again."""


async def catch_up_outside(follower: FollowerOnPool, pool: asyncpg.Pool, *, batch_size: int = 500) -> int:
    """Handle one batch outside the checkpoint's transaction; returns how many events it passed (0
    when caught up). ``catch_up_once = catch_up_outside`` on a follower's class makes it its step."""
    async with pool.acquire() as conn:
        after = await read_checkpoint(conn, follower.name)
        # Every type is read and filtered here, so the checkpoint passes the others too.
        events = await read_after(conn, after, limit=batch_size)
    if not events:
        return 0
    wanted = set(follower.types) if follower.types is not None else None
    relevant = [event for event in events if wanted is None or event.type in wanted]
    if relevant:
        await follower.handle_batch_on_pool(pool, relevant)
    last = events[-1]
    moved = await pool.fetchval(
        "UPDATE follower_checkpoints SET transaction_id = $4, position = $5, updated_at = now()"
        " WHERE name = $1 AND transaction_id = $2 AND position = $3 RETURNING true",
        follower.name,
        after.transaction_id,
        after.position,
        last.transaction_id,
        last.position,
    )
    if not moved:  # another runner overlapped and got further: its checkpoint stands
        log.info("follower.checkpoint_moved_meanwhile", follower=follower.name)
    EVENTS_FOLLOWED.labels(follower.name).inc(len(events))
    FOLLOWER_LAG.labels(follower.name).set(max(0.0, time.time() - last.recorded_at.timestamp()))
    return len(events)


async def read_checkpoint(conn: asyncpg.Connection, name: str) -> Checkpoint:
    await conn.execute(
        "INSERT INTO follower_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name
    )
    row = await conn.fetchrow(
        "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1", name
    )
    return Checkpoint(row["transaction_id"], row["position"])
