"""Writing and loading streams, always inside the caller's transaction.

The ``streams`` row is the concurrency guard. A command locks it (``load_stream(lock=True)``), decides,
and appends: concurrent commands on one hot stream queue on the row lock instead of failing and
retrying. ``append`` still checks the expected version, so a writer that did not lock gets a
``ConcurrencyError`` rather than a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from prometheus_client import Counter

EVENTS_APPENDED = Counter(
    "events_appended_total", "Events appended to the log (counted before commit)", ["type"]
)


class ConcurrencyError(Exception):
    """The stream moved past the version the command decided on."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    event_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    position: int
    transaction_id: int
    stream_id: str
    version: int
    event_id: UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class StreamState:
    """A stream's head: its version, its latest snapshot, and the events after that snapshot."""

    stream_id: str
    version: int
    snapshot: dict[str, Any] | None
    snapshot_version: int
    events: list[RecordedEvent]


EVENT_COLUMNS = (
    "position, transaction_id::text::bigint AS transaction_id, stream_id, version, event_id,"
    " type, data, metadata, recorded_at"
)


def to_recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(**dict(row))


async def load_stream(conn: asyncpg.Connection, stream_id: str, *, lock: bool = False) -> StreamState | None:
    """The stream's head and the events after its snapshot; ``None`` if it has no events yet.

    With ``lock`` the head row stays locked until the transaction ends, so the caller may decide
    and append without a competing writer in between.
    """
    head = await conn.fetchrow(
        "SELECT version, snapshot, snapshot_version FROM streams WHERE stream_id = $1"
        + (" FOR UPDATE" if lock else ""),
        stream_id,
    )
    if head is None:
        return None
    since = head["snapshot_version"] or 0
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version",
        stream_id,
        since,
    )
    return StreamState(stream_id, head["version"], head["snapshot"], since, [to_recorded(r) for r in rows])


async def append(
    conn: asyncpg.Connection,
    stream_id: str,
    expected_version: int,
    events: list[NewEvent],
    *,
    metadata: dict[str, Any] | None = None,
    snapshot: dict[str, Any] | None = None,
) -> list[RecordedEvent]:
    """Append ``events`` after ``expected_version``; with ``snapshot``, store it as of the new version.

    One statement moves the stream's head and inserts the events: if the head is not where the
    caller expects, nothing is inserted and that is the conflict.
    """
    if not events:
        return []
    new_version = expected_version + len(events)
    if expected_version == 0:
        head = (
            "INSERT INTO streams (stream_id, version, snapshot, snapshot_version)"
            " VALUES ($1, $3::int, $7::jsonb, CASE WHEN $7::jsonb IS NULL THEN NULL ELSE $3::int END)"
            " ON CONFLICT (stream_id) DO NOTHING RETURNING stream_id"
        )
    else:
        head = (
            "UPDATE streams SET version = $3::int,"
            " snapshot = coalesce($7::jsonb, snapshot),"
            " snapshot_version = CASE WHEN $7::jsonb IS NULL THEN snapshot_version ELSE $3::int END"
            " WHERE stream_id = $1 AND version = $2::int RETURNING stream_id"
        )
    rows = await conn.fetch(
        f"WITH head AS ({head})"
        " INSERT INTO events (stream_id, version, event_id, type, data, metadata)"
        " SELECT head.stream_id, ($2::int + e.n)::int, e.event_id, e.type, e.data, $6::jsonb"
        " FROM head, unnest($4::uuid[], $5::text[], $8::jsonb[])"
        " WITH ORDINALITY AS e(event_id, type, data, n)"
        f" RETURNING {EVENT_COLUMNS}",
        stream_id,
        expected_version,
        new_version,
        [e.event_id for e in events],
        [e.type for e in events],
        metadata or {},
        snapshot,
        [e.data for e in events],
    )
    if not rows:
        raise ConcurrencyError(f"{stream_id} is not at version {expected_version}")
    for event in events:
        EVENTS_APPENDED.labels(event.type).inc()
    return sorted((to_recorded(row) for row in rows), key=lambda e: e.version)
