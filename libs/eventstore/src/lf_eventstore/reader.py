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


async def read_visible_after(
    conn: asyncpg.Connection, after: Checkpoint, *, limit: int = 500, types: list[str] | None = None
) -> list[RecordedEvent]:
    """Like ``read_after``, but every committed event, above the horizon too.

    Only for a reader that holds locks under which no writer of what it reads can commit meanwhile
    (the swap of an inline projection's rebuild): otherwise a late commit could land behind it.
    """
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events"
        " WHERE (transaction_id, position) > ($1::text::xid8, $2)"
        "   AND ($4::text[] IS NULL OR type = ANY($4))"
        " ORDER BY events.transaction_id, events.position LIMIT $3",
        str(after.transaction_id),
        after.position,
        limit,
        types,
    )
    return [to_recorded(r) for r in rows]


async def predecessors(
    conn: asyncpg.Connection, events: list[RecordedEvent], *, types: list[str] | None = None
) -> dict[int, Checkpoint]:
    """For each event (by position), where the previous event of its stream (of ``types``) is in
    reading order: what a replay that must follow each stream's own order waits for."""
    rows = await conn.fetch(
        "SELECT e.position, p.transaction_id::text::bigint AS transaction_id, p.position AS before"
        " FROM unnest($1::text[], $2::int[], $3::bigint[]) AS e(stream_id, version, position)"
        " CROSS JOIN LATERAL (SELECT transaction_id, position FROM events p"
        "   WHERE p.stream_id = e.stream_id AND p.version < e.version"
        "     AND ($4::text[] IS NULL OR p.type = ANY($4))"
        "   ORDER BY p.version DESC LIMIT 1) p",
        [e.stream_id for e in events],
        [e.version for e in events],
        [e.position for e in events],
        types,
    )
    return {r["position"]: Checkpoint(r["transaction_id"], r["before"]) for r in rows}


async def read_in_position_order(
    conn: asyncpg.Connection, after_position: int, *, limit: int = 500, types: list[str] | None = None
) -> list[RecordedEvent]:
    """Committed events after ``after_position``, in the order they were appended.

    Only for a reader that holds locks under which no relevant writer can commit meanwhile (the
    rebuild of an inline projection): position order is each stream's own order, which reading
    order is not when concurrent transactions took their ids in another order than their locks.
    """
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 AND ($3::text[] IS NULL OR type = ANY($3))"
        " ORDER BY position LIMIT $2",
        after_position,
        limit,
        types,
    )
    return [to_recorded(r) for r in rows]
