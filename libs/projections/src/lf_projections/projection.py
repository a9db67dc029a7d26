"""A projection: a name, a handler per event type, and the tables it owns.

A projection runs either inline (``apply`` inside the command's transaction, for read-your-writes)
or, declared ``followed=True``, behind a follower of its own name that catches up asynchronously.
Which one is a property of the projection, not of whoever rebuilds it: ``rebuild`` replays a
followed projection as its runner reads and hands the runner its checkpoint, and replaying it as
inline instead would leave that checkpoint behind the swapped-in rows.
Handlers must be deterministic functions of the event (use ``event.recorded_at``, never ``now()``)
so that a rebuild reproduces the live rows exactly. A projection that writes rows of the same shape
for many events may instead take them all at once (``batch``): one ``executemany`` per batch
rather than a round trip per event, which is what a follower catching up or a rebuild pays for.

An inline projection says its effect as statements instead (``writes``: events in, statements
out, no I/O): the command runner composes them with the append into the command's one write
(``lf_pg.compose``), so a command's read models cost no round trip of their own. ``writes`` gets
any number of events of any streams in log order and must fold them so that no two of its
statements touch the same row (they run as CTEs of one statement and do not see each other). It
must not read ``position`` or ``transaction_id``: before the append they are not known (0).
A fold's rows of one table go out as one statement whatever their number (``lf_projections.rows``),
so a rebuild's batch of a thousand events costs a few statements, not a thousand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from lf_eventstore import RecordedEvent
from lf_pg import Statement, execute_all

Handler = Callable[[asyncpg.Connection, RecordedEvent], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, list[RecordedEvent]], Awaitable[None]]
Writes = Callable[[list[RecordedEvent]], list[Statement]]


@dataclass(frozen=True)
class Projection:
    name: str
    tables: tuple[str, ...]
    handlers: dict[str, Handler] = field(default_factory=dict)
    batch: BatchHandler | None = None
    batch_types: tuple[str, ...] = ()
    followed: bool = False
    writes: Writes | None = None
    write_types: tuple[str, ...] = ()  # the event types ``writes`` acts on (what a rebuild reads)

    @property
    def follower_name(self) -> str | None:
        """The checkpoint its runner keeps (``BackgroundWork.follow`` names it so); None if inline."""
        return self.name if self.followed else None

    @property
    def types(self) -> list[str]:
        return sorted({*self.handlers, *self.batch_types, *self.write_types})

    async def apply(self, conn: asyncpg.Connection, events: Iterable[RecordedEvent]) -> None:
        events = list(events)
        if self.writes is not None:
            await execute_all(conn, self.writes(events))
        if self.batch is not None:
            await self.batch(conn, [event for event in events if event.type in self.batch_types])
        for event in events:
            handler = self.handlers.get(event.type)
            if handler is not None:
                await handler(conn, event)

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        await self.apply(conn, events)
