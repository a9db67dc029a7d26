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
    """Append ``events`` after ``expected_version``; with ``snapshot``, store it as of the new version."""
    if not events:
        return []
    new_version = expected_version + len(events)
    if expected_version == 0:
        moved = await conn.fetchval(
            "INSERT INTO streams (stream_id, version, snapshot, snapshot_version)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (stream_id) DO NOTHING RETURNING version",
            stream_id,
            new_version,
            snapshot,
            new_version if snapshot is not None else None,
        )
    elif snapshot is None:
        moved = await conn.fetchval(
            "UPDATE streams SET version = $3 WHERE stream_id = $1 AND version = $2 RETURNING version",
            stream_id,
            expected_version,
            new_version,
        )
    else:
        moved = await conn.fetchval(
            "UPDATE streams SET version = $3, snapshot = $4, snapshot_version = $3"
            " WHERE stream_id = $1 AND version = $2 RETURNING version",
            stream_id,
            expected_version,
            new_version,
            snapshot,
        )
    if moved is None:
        raise ConcurrencyError(f"{stream_id} is not at version {expected_version}")
    recorded = []
    for offset, event in enumerate(events, start=1):
        row = await conn.fetchrow(
            "INSERT INTO events (stream_id, version, event_id, type, data, metadata)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {EVENT_COLUMNS}",
            stream_id,
            expected_version + offset,
            event.event_id,
            event.type,
            event.data,
            metadata or {},
        )
        recorded.append(to_recorded(row))
        EVENTS_APPENDED.labels(event.type).inc()
    return recorded
