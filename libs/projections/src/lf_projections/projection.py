"""A projection: a name, a handler per event type, and the tables it owns.

The same object runs inline (``apply`` inside the command's transaction, for read-your-writes) or
behind a ``Follower`` that catches up asynchronously; ``rebuild`` replays the log into fresh tables.
Handlers must be deterministic functions of the event (use ``event.recorded_at``, never ``now()``)
so that a rebuild reproduces the live rows exactly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from lf_eventstore import RecordedEvent

Handler = Callable[[asyncpg.Connection, RecordedEvent], Awaitable[None]]


@dataclass(frozen=True)
class Projection:
    name: str
    tables: tuple[str, ...]
    handlers: dict[str, Handler] = field(default_factory=dict)

    @property
    def types(self) -> list[str]:
        return sorted(self.handlers)

    async def apply(self, conn: asyncpg.Connection, events: Iterable[RecordedEvent]) -> None:
        for event in events:
            handler = self.handlers.get(event.type)
            if handler is not None:
                await handler(conn, event)

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        await self.apply(conn, events)
