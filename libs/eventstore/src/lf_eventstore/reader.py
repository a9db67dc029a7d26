"""Reading the log in an order that never skips a late-committing event.

Identity values are taken at insert time but become visible at commit, out of order. Ordering by
``(transaction_id, position)`` and reading only transactions below the oldest one still running
(``pg_snapshot_xmin``) means everything a reader has passed is final: nothing can later appear behind
its checkpoint. Writers are never serialised for it.
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg

from lf_eventstore.store import EVENT_COLUMNS, RecordedEvent, to_recorded


class Checkpoint(NamedTuple):
    transaction_id: int
    position: int


START = Checkpoint(0, 0)


def checkpoint_of(event: RecordedEvent) -> Checkpoint:
    return Checkpoint(event.transaction_id, event.position)


async def read_after(
    conn: asyncpg.Connection,
    after: Checkpoint,
    *,
    limit: int = 500,
    types: list[str] | None = None,
) -> list[RecordedEvent]:
    """Up to ``limit`` committed events after ``after``, in reading order; ``types`` filters."""
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events"
        " WHERE (transaction_id, position) > ($1::text::xid8, $2)"
        "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
        "   AND ($4::text[] IS NULL OR type = ANY($4))"
        # Qualified on purpose: the bare names would sort by the select list's bigint alias of
        # transaction_id, which no index provides (a full sort of the rest of the log per batch).
        " ORDER BY events.transaction_id, events.position LIMIT $3",
        str(after.transaction_id),
        after.position,
        limit,
        types,
    )
    return [to_recorded(r) for r in rows]


async def read_in_position_order(
    conn: asyncpg.Connection, after_position: int, *, limit: int = 500, types: list[str] | None = None
) -> list[RecordedEvent]:
    """Committed events after ``after_position``, in the order they were appended.

    Position order is each stream's own order (a stream's next append takes its position after the
    previous one committed), which reading order is not when concurrent transactions took their ids
    in another order than their stream locks. But a transaction still running may commit events
    behind the position read up to: ``PositionOrderReader`` catches those.
    """
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 AND ($3::text[] IS NULL OR type = ANY($3))"
        " ORDER BY position LIMIT $2",
        after_position,
        limit,
        types,
    )
    return [to_recorded(r) for r in rows]


class PositionOrderReader:
    """Every committed event once, each stream's in its own order, without waiting for the horizon.

    Reads forward in position order, and remembers the transactions that were still running when it
    read (they may commit events behind its position); once one has ended, its events are read too.
    A transaction that committed an event of a stream committed every earlier event of that stream
    before, so nothing of a stream is ever read before what precedes it.

    Each ``read`` must run in a REPEATABLE READ transaction of its own (or several in one, which
    then all see the same snapshot): the running transactions it notes are those of the snapshot
    its reads see.
    """

    def __init__(self, types: list[str] | None = None) -> None:
        self.types = types
        self.position = 0
        self._running: set[int] = set()

    async def read(self, conn: asyncpg.Connection, *, limit: int = 500) -> tuple[list[RecordedEvent], bool]:
        """The next events, in position order; and whether more may be ahead (``limit`` reached)."""
        running = set(
            await conn.fetchval(
                "SELECT coalesce(array_agg(x::text::bigint), '{}')"
                " FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
            )
        )
        ended = sorted(self._running - running)
        late = []
        if ended:
            rows = await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events"
                " WHERE transaction_id = ANY($1::text[]::xid8[]) AND position <= $2"
                "   AND ($3::text[] IS NULL OR type = ANY($3))",
                [str(x) for x in ended],
                self.position,
                self.types,
            )
            late = [to_recorded(r) for r in rows]
        ahead = await read_in_position_order(conn, self.position, limit=limit, types=self.types)
        self._running = (self._running - set(ended)) | running
        if ahead:
            self.position = ahead[-1].position
        return sorted([*late, *ahead], key=lambda e: e.position), len(ahead) == limit
