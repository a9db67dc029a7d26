"""Loading an aggregate from its stream (snapshot, then later events) and appending what it recorded."""

from __future__ import annotations

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

    async def load(self, conn: asyncpg.Connection, key: object, *, lock: bool = True) -> A | None:
        state = await load_stream(conn, self.stream_id(key), lock=lock)
        if state is None:
            return None
        if state.snapshot is not None:
            aggregate = self.aggregate_type.from_snapshot(state.snapshot)
            aggregate.version = state.snapshot_version
        else:
            aggregate = self.aggregate_type()
        for recorded in state.events:
            aggregate.replay(recorded)
        return aggregate

    async def save(
        self,
        conn: asyncpg.Connection,
        key: object,
        aggregate: A,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        events = aggregate.pending()
        if not events:
            return []
        before = aggregate.version
        after = before + len(events)
        crosses = after // self.snapshot_every > before // self.snapshot_every
        recorded = await append(
            conn,
            self.stream_id(key),
            before,
            [NewEvent(e.type_name(), e.model_dump(mode="json")) for e in events],
            metadata=metadata,
            snapshot=aggregate.to_snapshot() if crosses else None,
        )
        aggregate.saved(after)
        return recorded
