"""Loading an aggregate from its stream (snapshot, then later events) and appending what it recorded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import asyncpg

from lf_eventstore.aggregate import Aggregate
from lf_eventstore.store import NewEvent, RecordedEvent, append, load_stream

A = TypeVar("A", bound=Aggregate)


class AggregateRepository(Generic[A]):
    """Loads an aggregate under its stream lock and appends what it recorded.

    A snapshot is written whenever the stream crosses a multiple of ``snapshot_every``, so loading
    reads at most that many events whatever the stream's length.
    """

    def __init__(self, aggregate_type: type[A], stream_prefix: str, *, snapshot_every: int = 100) -> None:
        self.aggregate_type = aggregate_type
        self.stream_prefix = stream_prefix
        self.snapshot_every = snapshot_every

    def stream_id(self, key: object) -> str:
        return f"{self.stream_prefix}-{key}"

    def from_stored(
        self,
        snapshot: dict[str, Any] | None,
        snapshot_version: int,
        events: Iterable[tuple[int, str, dict[str, Any]]],
    ) -> A:
        """The aggregate from its snapshot (if any) and the ``(version, type, data)`` events after it."""
        if snapshot is not None:
            aggregate = self.aggregate_type.from_snapshot(snapshot)
            aggregate.version = snapshot_version
        else:
            aggregate = self.aggregate_type()
        for version, type_name, data in events:
            aggregate.replay_stored(version, type_name, data)
        return aggregate

    def to_store(self, aggregate: A) -> tuple[list[NewEvent], dict[str, Any] | None]:
        """What saving ``aggregate`` appends: its pending events, and its snapshot when the stream
        crosses a multiple of ``snapshot_every`` with them."""
        events = aggregate.pending()
        before = aggregate.version
        after = before + len(events)
        crosses = after // self.snapshot_every > before // self.snapshot_every
        return (
            [NewEvent(e.type_name(), e.model_dump(mode="json")) for e in events],
            aggregate.to_snapshot() if crosses else None,
        )

    async def load(self, conn: asyncpg.Connection, key: object, *, lock: bool = True) -> A | None:
        state = await load_stream(conn, self.stream_id(key), lock=lock)
        if state is None:
            return None
        return self.from_stored(
            state.snapshot, state.snapshot_version, ((e.version, e.type, e.data) for e in state.events)
        )

    async def save(
        self,
        conn: asyncpg.Connection,
        key: object,
        aggregate: A,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        if not aggregate.pending():
            return []
        events, snapshot = self.to_store(aggregate)
        recorded = await append(
            conn, self.stream_id(key), aggregate.version, events, metadata=metadata, snapshot=snapshot
        )
        aggregate.saved(aggregate.version + len(events))
        return recorded
