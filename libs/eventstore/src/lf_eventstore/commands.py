"""How a command runs: one aggregate, one PostgreSQL transaction.

Lock the aggregate's stream row, load it from its snapshot and later events (or make a new one with
the command's factory), let ``decide`` act on it, append whatever it recorded, and apply the inline
projections in the same transaction: the events and their read models commit together or not at
all. Every service runs its commands this way.

On the pool a command is a transaction of its own; bound to a connection (``on(conn)``: a message
consumer, a delivery processor) it is a savepoint in the caller's transaction, so its effects commit
with the caller's inbox row or checkpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, Self, TypeVar

import asyncpg

from lf_eventstore.aggregate import Aggregate
from lf_eventstore.repository import AggregateRepository
from lf_eventstore.store import ConcurrencyError, RecordedEvent

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


class InlineProjection(Protocol):
    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CommandRunner:
    pool: asyncpg.Pool
    inline: Sequence[InlineProjection] = ()
    clock: Callable[[], datetime] = utc_now
    conn: asyncpg.Connection | None = None
    recorded: Callable[[list[RecordedEvent]], None] | None = None
    """Told of each command's events when it completes (metrics; inside a caller's transaction,
    before that transaction commits)."""

    def on(self, conn: asyncpg.Connection) -> Self:
        return replace(self, conn=conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self.conn is not None:
            yield self.conn
        else:
            async with self.pool.acquire() as conn:
                yield conn

    async def run(
        self,
        repository: AggregateRepository[A],
        key: object | Callable[[asyncpg.Connection], Awaitable[object]],
        decide: Callable[[asyncpg.Connection, A], Awaitable[T]],
        *,
        metadata: dict[str, Any],
        new: Callable[[], A] | None = None,
    ) -> T:
        """``decide`` acts on the aggregate and returns only the command's result; whatever the
        aggregate recorded is saved. Without a stream the aggregate comes from ``new`` (by default
        an empty one; a factory that raises refuses commands on aggregates that do not exist).
        ``key`` may be a lookup run on the command's connection (e.g. the owner of a reservation)."""
        # A ConcurrencyError can only come from two commands creating the same new stream at once
        # (an existing stream is locked before deciding): the loser retries and finds it.
        for attempt in range(3):
            try:
                async with self.connection() as conn, conn.transaction():
                    stream_key = await key(conn) if callable(key) else key
                    aggregate = await repository.load(conn, stream_key, lock=True)
                    if aggregate is None:
                        aggregate = (new or repository.aggregate_type)()
                    result = await decide(conn, aggregate)
                    recorded = await self.save(conn, repository, stream_key, aggregate, metadata=metadata)
                if self.recorded is not None:
                    self.recorded(recorded)
                return result
            except ConcurrencyError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def save(
        self,
        conn: asyncpg.Connection,
        repository: AggregateRepository[A],
        key: object,
        aggregate: A,
        *,
        metadata: dict[str, Any],
    ) -> list[RecordedEvent]:
        """Append what ``aggregate`` recorded (if anything) and apply the inline projections to it,
        in the caller's transaction on ``conn``, where ``key``'s stream is locked already."""
        if not aggregate.pending():
            return []
        recorded = await repository.save(conn, key, aggregate, metadata=metadata)
        for projection in self.inline:
            await projection.apply(conn, recorded)
        return recorded
