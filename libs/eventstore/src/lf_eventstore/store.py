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

from lf_pg import Statement, compose

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


def append_statements(
    stream_id: str,
    expected_version: int,
    events: list[NewEvent],
    *,
    metadata: dict[str, Any] | list[dict[str, Any]] | None = None,
    snapshot: dict[str, Any] | None = None,
) -> list[Statement]:
    """The append as two statements to compose (``lf_pg.compose``, answer ``"appended"``): the head
    moves from ``expected_version`` (or the stream is created at 0) and the events are inserted
    after it. If the head is not where the caller expects, ``head`` is empty and nothing is inserted:
    that is the conflict. ``metadata`` is one mapping for every event or one per event."""
    new_version = expected_version + len(events)
    if expected_version == 0:
        head = Statement(
            "INSERT INTO streams (stream_id, version, snapshot, snapshot_version)"
            " VALUES ($1, $2::int, $3::jsonb, CASE WHEN $3::jsonb IS NULL THEN NULL ELSE $2::int END)"
            " ON CONFLICT (stream_id) DO NOTHING RETURNING stream_id",
            (stream_id, new_version, snapshot),
            name="head",
        )
    else:
        head = Statement(
            "UPDATE streams SET version = $2::int,"
            " snapshot = coalesce($3::jsonb, snapshot),"
            " snapshot_version = CASE WHEN $3::jsonb IS NULL THEN snapshot_version ELSE $2::int END"
            " WHERE stream_id = $1 AND version = $4::int RETURNING stream_id",
            (stream_id, new_version, snapshot, expected_version),
            name="head",
        )
    each = metadata if isinstance(metadata, list) else [metadata or {}] * len(events)
    insert = Statement(
        "INSERT INTO events (stream_id, version, event_id, type, data, metadata)"
        " SELECT head.stream_id, ($1::int + e.n)::int, e.event_id, e.type, e.data, e.metadata"
        " FROM head, unnest($2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[])"
        " WITH ORDINALITY AS e(event_id, type, data, metadata, n)"
        f" RETURNING {EVENT_COLUMNS}",
        (
            expected_version,
            [e.event_id for e in events],
            [e.type for e in events],
            [e.data for e in events],
            each,
        ),
        name="appended",
    )
    return [head, insert]


def appended(
    stream_id: str, expected_version: int, rows: list[asyncpg.Record], events: list[NewEvent]
) -> list[RecordedEvent]:
    """The recorded events from the append's ``RETURNING`` rows; none means the head had moved."""
    if not rows:
        raise ConcurrencyError(f"{stream_id} is not at version {expected_version}")
    for event in events:
        EVENTS_APPENDED.labels(event.type).inc()
    return sorted((to_recorded(row) for row in rows), key=lambda e: e.version)


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
    One statement moves the stream's head and inserts the events (``append_statements``)."""
    if not events:
        return []
    write = compose(
        append_statements(stream_id, expected_version, events, metadata=metadata, snapshot=snapshot),
        answer="appended",
    )
    return appended(stream_id, expected_version, await conn.fetch(write.sql, *write.args), events)
