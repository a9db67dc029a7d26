"""How a command runs: a new aggregate from its factory, saved only when it recorded something,
inline projections in the same transaction, and a bound runner inside the caller's transaction."""

from __future__ import annotations

from typing import Any, Self

import pytest

from lf_eventstore import (
    MIGRATIONS,
    Aggregate,
    AggregateRepository,
    CommandRunner,
    DomainEvent,
    RecordedEvent,
    UseCases,
)
from lf_pg import create_pool, migrate


class Added(DomainEvent):
    n: int


class Tally(Aggregate):
    event_types = {"Added": Added}

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def add(self, n: int) -> None:
        if n:  # adding nothing records nothing
            self._record(Added(n=n))

    def _apply(self, event: DomainEvent) -> None:
        assert isinstance(event, Added)
        self.total += event.n

    def to_snapshot(self) -> dict[str, Any]:
        return {"total": self.total}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        tally = cls()
        tally.total = data["total"]
        return tally


TALLIES = AggregateRepository(Tally, "tally")


class Seen:
    """An inline projection that remembers what it was given."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def apply(self, conn: Any, events: list[RecordedEvent]) -> None:
        self.batches.append([e.type for e in events])


class NoTally(Exception):
    pass


def no_tally() -> Tally:
    raise NoTally()


class Tallies(UseCases):
    async def add(self, key: str, n: int, *, must_exist: bool = False) -> int:
        async def decide(conn: Any, tally: Tally) -> int:
            tally.add(n)
            return tally.total

        new = no_tally if must_exist else None
        return await self.commands.run(TALLIES, key, decide, new=new, metadata={"actor": "test"})


@pytest.fixture
async def pool(database_url):
    await migrate(database_url, "store", [MIGRATIONS])
    pool = await create_pool(database_url, "store", min_size=1, max_size=2)
    yield pool
    await pool.close()


async def versions(pool) -> dict[str, int]:
    return {r["stream_id"]: r["version"] for r in await pool.fetch("SELECT stream_id, version FROM streams")}


async def test_a_new_aggregate_comes_from_the_factory_and_decide_returns_only_the_result(pool):
    seen = Seen()
    tallies = Tallies(CommandRunner(pool, [seen]))
    assert await tallies.add("a", 2) == 2
    assert await tallies.add("a", 3) == 5
    assert await versions(pool) == {"tally-a": 2}
    assert seen.batches == [["Added"], ["Added"]]


async def test_a_command_that_records_nothing_saves_nothing_and_projects_nothing(pool):
    seen, recorded = Seen(), []
    tallies = Tallies(CommandRunner(pool, [seen], recorded=recorded.append))
    assert await tallies.add("a", 0) == 0
    assert await versions(pool) == {}
    assert seen.batches == [] and recorded == [[]]


async def test_a_factory_that_raises_refuses_a_command_on_a_missing_aggregate(pool):
    tallies = Tallies(CommandRunner(pool))
    with pytest.raises(NoTally):
        await tallies.add("missing", 1, must_exist=True)
    await tallies.add("there", 1)
    assert await tallies.add("there", 1, must_exist=True) == 2


async def test_use_cases_bound_to_a_connection_commit_with_the_callers_transaction(pool):
    tallies = Tallies(CommandRunner(pool))
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await tallies.on(conn).add("a", 1)
        await transaction.rollback()
    assert await versions(pool) == {}
    assert tallies.commands.conn is None  # binding made a copy
