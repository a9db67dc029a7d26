"""The append-only event store of one service schema (DESIGN §3)."""

from lf_eventstore.aggregate import Aggregate, AggregateRepository, DomainEvent
from lf_eventstore.commands import CommandRunner, utc_now
from lf_eventstore.reader import START, Checkpoint, read_after, read_in_position_order
from lf_eventstore.store import (
    ConcurrencyError,
    NewEvent,
    RecordedEvent,
    StreamState,
    append,
    load_stream,
)
from lf_eventstore.wakeup import Wakeup
from lf_pg import MigrationSet

MIGRATIONS = MigrationSet("eventstore", "lf_eventstore")

__all__ = [
    "MIGRATIONS",
    "START",
    "Aggregate",
    "AggregateRepository",
    "Checkpoint",
    "CommandRunner",
    "ConcurrencyError",
    "DomainEvent",
    "NewEvent",
    "RecordedEvent",
    "StreamState",
    "Wakeup",
    "append",
    "load_stream",
    "read_after",
    "read_in_position_order",
    "utc_now",
]
