"""The append-only event store of one service schema (DESIGN §3)."""

from lf_eventstore.aggregate import Aggregate, DomainEvent, by_name
from lf_eventstore.commands import Command, CommandRunner, Decision, Facts, KeyLookup, utc_now
from lf_eventstore.reader import (
    START,
    Checkpoint,
    PositionOrderReader,
    checkpoint_of,
    read_after,
    read_in_position_order,
)
from lf_eventstore.repository import AggregateRepository
from lf_eventstore.store import (
    ConcurrencyError,
    NewEvent,
    RecordedEvent,
    StreamState,
    append,
    load_stream,
)
from lf_eventstore.use_cases import UseCases
from lf_eventstore.wakeup import AppendNote, Wakeup, appends_noted, note_append
from lf_pg import MigrationSet

# The runtime role appends and reads; only the owner could ever change history (and its triggers
# refuse even that).
MIGRATIONS = MigrationSet(
    "eventstore",
    "lf_eventstore",
    privileges=(("events", "SELECT, INSERT"), ("streams", "SELECT, INSERT, UPDATE")),
)

__all__ = [
    "MIGRATIONS",
    "START",
    "Aggregate",
    "AggregateRepository",
    "AppendNote",
    "Checkpoint",
    "Command",
    "CommandRunner",
    "ConcurrencyError",
    "Decision",
    "DomainEvent",
    "Facts",
    "KeyLookup",
    "NewEvent",
    "PositionOrderReader",
    "RecordedEvent",
    "StreamState",
    "UseCases",
    "Wakeup",
    "append",
    "appends_noted",
    "by_name",
    "checkpoint_of",
    "load_stream",
    "note_append",
    "read_after",
    "read_in_position_order",
    "utc_now",
]
