"""Event-sourced aggregates and the repository that loads and saves them.

Following the eventsourcing library's split: a public method on the aggregate checks the rules and
raises before any event exists; only then does it ``_record`` the event, which ``_apply`` folds into
state. Replay calls ``_apply`` only, so loading never re-decides anything. Aggregates do no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Self, TypeVar

import asyncpg
from pydantic import BaseModel, ConfigDict

from lf_eventstore.store import NewEvent, RecordedEvent, append, load_stream


class DomainEvent(BaseModel):
    """A fact inside one bounded context; stored under its class name."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


class Aggregate(ABC):
    event_types: ClassVar[dict[str, type[DomainEvent]]]

    def __init__(self) -> None:
        self.version = 0
        self._pending: list[DomainEvent] = []

    @abstractmethod
    def _apply(self, event: DomainEvent) -> None: ...

    @abstractmethod
    def to_snapshot(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self: ...

    def _record(self, event: DomainEvent) -> None:
        self._apply(event)
        self._pending.append(event)

    def pending(self) -> list[DomainEvent]:
        return list(self._pending)

    def replay(self, recorded: RecordedEvent) -> None:
        self._apply(self.event_types[recorded.type].model_validate(recorded.data))
        self.version = recorded.version


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
        aggregate.version = after
        aggregate._pending.clear()
        return recorded
