"""Event-sourced aggregates: pure state and rules, loaded and saved by ``repository``.

Following the eventsourcing library's split: a public method on the aggregate checks the rules and
raises before any event exists; only then does it ``_record`` the event, which ``_apply`` folds into
state. Replay calls ``_apply`` only, so loading never re-decides anything. Aggregates do no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from lf_eventstore.store import RecordedEvent


class DomainEvent(BaseModel):
    """A fact inside one bounded context; stored under its class name."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


def by_name(*classes: type[DomainEvent]) -> dict[str, type[DomainEvent]]:
    """An aggregate's ``event_types``: its event classes under the names they are stored by."""
    return {cls.type_name(): cls for cls in classes}


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

    @property
    def is_new(self) -> bool:
        """Nothing in its stream and nothing recorded yet: made by a command's factory."""
        return self.version == 0 and not self._pending

    def saved(self, version: int) -> None:
        """Its pending events are in the log now, the last of them at ``version``."""
        self.version = version
        self._pending.clear()

    def replay(self, recorded: RecordedEvent) -> None:
        self.replay_stored(recorded.version, recorded.type, recorded.data)

    def replay_stored(self, version: int, type_name: str, data: dict[str, Any]) -> None:
        """Fold in a stored event: its version, type and data as the log holds them."""
        self._apply(self.event_types[type_name].model_validate(data))
        self.version = version
