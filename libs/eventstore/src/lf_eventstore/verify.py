"""Checking every stream against a replay of its events (``python -m <pkg> verify``).

A snapshot is a cache that loading trusts: the events before it are never read again, so a wrong
one (a bug in ``to_snapshot``/``from_snapshot``, a hand edit) silently changes every later decision
on its stream. A replay from the first event is the truth. This replays every stream, compares the
stored snapshot with the state the replay has at ``snapshot_version``, and checks that the stream's
head (``streams.version``) is its last event.

Everything is read in one REPEATABLE READ READ ONLY transaction: one consistent view of the log,
with no transaction id (the readers' horizon is never held back) and no lock stronger than
ACCESS SHARE (no writer ever waits). Events are streamed through a cursor, one stream folded at a
time, so memory does not grow with the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import asyncpg

from lf_eventstore.aggregate import Aggregate
from lf_eventstore.repository import AggregateRepository
from lf_eventstore.store import EVENT_COLUMNS, RecordedEvent
from lf_pg import jsonb


class _Nothing:
    """Where one side has no row, field or snapshot at all (distinct from a stored null)."""

    def __repr__(self) -> str:
        return "nothing"


NOTHING: Any = _Nothing()


def show(value: Any) -> str:
    """A value as an operator reads it: a sentence as it is, a row or a snapshot as ``name=value``
    pairs (values in JSON, so text and numbers stay apart), anything else as JSON."""
    if value is NOTHING:
        return "nothing"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{name}={_json(v)}" for name, v in value.items()) + "}"
    return _json(value)


def _json(value: Any) -> str:
    return "nothing" if value is NOTHING else json.dumps(value, default=str, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where what is stored is not what the log says: ``where`` (a stream, a table), the
    ``key`` in it, what a replay gives (``expected``) and what is there (``found``)."""

    where: str
    key: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        return f"{self.where} [{self.key}]: expected {show(self.expected)}, found {show(self.found)}"


@dataclass(slots=True)
class Findings:
    """What one check compared (``checked``, for the report) and the differences it found; past
    ``limit`` differences are only counted (``unlisted``)."""

    subject: str
    checked: str = ""
    differences: list[Difference] = field(default_factory=list)
    unlisted: int = 0
    limit: int = 100

    def add(self, differences: Iterable[Difference]) -> None:
        for difference in differences:
            if len(self.differences) < self.limit:
                self.differences.append(difference)
            else:
                self.unlisted += 1

    @property
    def count(self) -> int:
        return len(self.differences) + self.unlisted


def changed_fields(
    expected: dict[str, Any], found: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, on each side, nested ones by their dotted path (a field one side
    lacks shows as ``nothing``)."""
    expected_only: dict[str, Any] = {}
    found_only: dict[str, Any] = {}
    for name in {**expected, **found}:
        was, now = expected.get(name, NOTHING), found.get(name, NOTHING)
        if was == now:
            continue
        if isinstance(was, dict) and isinstance(now, dict):
            deeper = changed_fields(was, now, f"{prefix}{name}.")
            expected_only.update(deeper[0])
            found_only.update(deeper[1])
        else:
            expected_only[prefix + name], found_only[prefix + name] = was, now
    return expected_only, found_only


_RECORDED = [f.name for f in fields(RecordedEvent)]

# Each event with its stream's head; the stored snapshot only on the event it was taken at.
_EVENTS_WITH_HEADS = (
    f"SELECT ev.*, s.stream_id IS NOT NULL AS has_head, s.version AS head, s.snapshot_version,"
    "        CASE WHEN ev.version = s.snapshot_version THEN s.snapshot END AS snapshot"
    f" FROM (SELECT {EVENT_COLUMNS} FROM events) ev LEFT JOIN streams s USING (stream_id)"
    " ORDER BY ev.stream_id, ev.version"
)
# Heads the walk over the events cannot see: no events at all, or a snapshot without its version.
_ODD_HEADS = (
    "SELECT stream_id, version, snapshot IS NOT NULL AS has_snapshot, snapshot_version FROM streams s"
    " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id)"
    "    OR (snapshot IS NOT NULL AND snapshot_version IS NULL)"
)


class _StreamReplay:
    """One stream replayed from its first event, fed one row at a time."""

    def __init__(self, first: asyncpg.Record, aggregate_type: type[Aggregate] | None) -> None:
        self.stream_id = first["stream_id"]
        self.where = f"stream {self.stream_id}"
        self.has_head, self.head = first["has_head"], first["head"]
        self.snapshot_version = first["snapshot_version"]
        self.aggregate = aggregate_type() if aggregate_type is not None else None
        self.version = 0
        self.snapshot_compared = False
        self.broken = False  # replay stopped at a difference; later rows prove nothing more

    def feed(self, row: asyncpg.Record) -> list[Difference]:
        if self.broken or self.aggregate is None:
            return []
        if row["version"] != self.version + 1:
            self.broken = True
            return [Difference(self.where, f"version {self.version + 1}", "an event", NOTHING)]
        event = RecordedEvent(**{name: row[name] for name in _RECORDED})
        try:
            self.aggregate.replay(event)
        except Exception as error:  # noqa: BLE001 - whatever stops a replay is what verify reports
            self.broken = True
            found = f"{event.type} that does not replay: {type(error).__name__}: {error}"
            return [Difference(self.where, f"version {event.version}", "an event that replays", found)]
        self.version = event.version
        if event.version != self.snapshot_version:
            return []
        self.snapshot_compared = True
        return self._compare_snapshot(row["snapshot"])

    def _compare_snapshot(self, stored: Any) -> list[Difference]:
        key = f"snapshot at version {self.version}"
        assert self.aggregate is not None
        # Through the one encoding snapshots are stored with, so only real differences remain.
        replayed = json.loads(jsonb(self.aggregate.to_snapshot()))
        if stored == replayed:
            return []
        if isinstance(stored, dict):
            return [Difference(self.where, key, *changed_fields(replayed, stored))]
        return [Difference(self.where, key, replayed, NOTHING if stored is None else stored)]

    def finish(self) -> list[Difference]:
        if self.aggregate is None:
            return [Difference(self.where, "stream prefix", "an aggregate registered for it", NOTHING)]
        if not self.has_head:
            return [Difference(self.where, "head", f"version {self.version}", "no streams row")]
        found = []
        if not self.broken and self.head != self.version:
            found.append(Difference(self.where, "head version", self.version, self.head))
        if not self.broken and self.snapshot_version is not None and not self.snapshot_compared:
            found.append(
                Difference(self.where, "snapshot version", f"1..{self.version}", self.snapshot_version)
            )
        return found


def _aggregate_for(
    stream_id: str, by_prefix: Sequence[tuple[str, type[Aggregate]]]
) -> type[Aggregate] | None:
    for prefix, aggregate_type in by_prefix:
        if stream_id.startswith(prefix):
            return aggregate_type
    return None


async def verify_streams(
    conn: asyncpg.Connection,
    repositories: Sequence[AggregateRepository[Any]],
    *,
    limit: int = 100,
    prefetch: int = 1000,
) -> Findings:
    """Replay every stream of ``conn``'s schema with the aggregate registered for its prefix."""
    # Longest prefix first: "credit-pack-x" belongs to "credit-pack", not to a "credit" aggregate.
    by_prefix = sorted(
        ((f"{r.stream_prefix}-", r.aggregate_type) for r in repositories), key=lambda p: -len(p[0])
    )
    findings = Findings("streams", limit=limit)
    streams = snapshots = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        current: _StreamReplay | None = None
        async for row in conn.cursor(_EVENTS_WITH_HEADS, prefetch=prefetch):
            if current is None or row["stream_id"] != current.stream_id:
                if current is not None:
                    findings.add(current.finish())
                    snapshots += current.snapshot_compared
                current = _StreamReplay(row, _aggregate_for(row["stream_id"], by_prefix))
                streams += 1
            findings.add(current.feed(row))
        if current is not None:
            findings.add(current.finish())
            snapshots += current.snapshot_compared
        for head in await conn.fetch(_ODD_HEADS):
            where = f"stream {head['stream_id']}"
            if head["has_snapshot"] and head["snapshot_version"] is None:
                findings.add([Difference(where, "snapshot version", "a version", NOTHING)])
            else:
                findings.add([Difference(where, "events", f"{head['version']} events", NOTHING)])
    findings.checked = f"{streams} streams replayed, {snapshots} snapshots compared"
    return findings
