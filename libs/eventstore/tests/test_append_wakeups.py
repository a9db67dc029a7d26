"""Wake-ups without a NOTIFY in every append (issue 8): the runner tells its process after COMMIT,
a bound runner only notes the append for its transaction's owner, the process's NOTIFYs to others
are throttled and its own are ignored, and appending notifies nobody by itself any more."""

from __future__ import annotations

import asyncio
from typing import Any, Self

import asyncpg
import pytest

from lf_eventstore import (
    MIGRATIONS,
    Aggregate,
    AggregateRepository,
    Command,
    CommandRunner,
    DomainEvent,
    NewEvent,
    Wakeup,
    append,
    appends_noted,
)
from lf_pg import create_pool, migrate
from lf_testing.waiting import eventually

SCHEMA = "wakes"


class Added(DomainEvent):
    n: int


class Counter(Aggregate):
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
        counter = cls()
        counter.total = data["total"]
        return counter


COUNTERS = AggregateRepository(Counter, "counter")


@pytest.fixture
async def pool(database_url):
    await migrate(database_url, SCHEMA, [MIGRATIONS])
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=4)
    yield pool
    await pool.close()


def add(n: int) -> Command[Counter, int]:
    def decide(_decision: Any, counter: Counter) -> int:
        counter.add(n)
        return counter.total

    return Command(COUNTERS, "c-1", decide, {"actor": "test"})


class Appended:
    """A runner's ``appended`` callback that records how many events another connection saw
    committed at the moment it was called."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.seen, self._checks = pool, [], []

    def __call__(self) -> None:
        self._checks.append(asyncio.create_task(self._count()))

    async def _count(self) -> None:
        self.seen.append(await self.pool.fetchval("SELECT count(*) FROM events"))

    async def calls(self) -> list[int]:
        await asyncio.gather(*self._checks)
        return self.seen


async def test_the_runner_tells_its_process_after_each_commit_that_appended(pool):
    told = Appended(pool)
    runner = CommandRunner(pool, appended=told)

    assert await runner.submit(add(2)) == 2
    assert await runner.submit(add(0)) == 2  # recorded nothing: nobody to wake

    async def decide(_conn: asyncpg.Connection, counter: Counter) -> int:
        counter.add(3)
        return counter.total

    assert await runner.run(COUNTERS, "c-1", decide, metadata={}) == 5
    # Called once per appending transaction, each time with its events already visible elsewhere.
    assert await told.calls() == [1, 2]


async def test_a_runner_bound_to_a_callers_transaction_only_notes_the_append_for_its_owner(pool):
    told = Appended(pool)
    runner = CommandRunner(pool, appended=told)
    async with pool.acquire() as conn:
        with appends_noted() as note:
            async with conn.transaction():
                await runner.on(conn).submit(add(1))
        assert note.appended
        with appends_noted() as saved:
            async with conn.transaction():
                counter = await COUNTERS.load(conn, "c-1", lock=True)
                counter.add(4)
                await runner.save(conn, COUNTERS, "c-1", counter, metadata={})
        assert saved.appended
        with appends_noted() as nothing:
            async with conn.transaction():
                await runner.on(conn).submit(add(0))
        assert not nothing.appended
    assert await told.calls() == []  # the owner of those transactions wakes readers, not the runner


async def test_an_append_notifies_nobody_by_itself_any_more(pool, database_url):
    assert not await pool.fetchval(
        "SELECT exists (SELECT FROM pg_trigger WHERE tgname = 'events_notify_on_append')"
        " OR exists (SELECT FROM pg_proc WHERE proname = 'events_notify')"
    )
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(f"{SCHEMA}_events", lambda *args: heard.put_nowait(args[3]))
        async with pool.acquire() as conn, conn.transaction():
            await append(conn, "counter-x", 0, [NewEvent("Added", {"n": 1})])
        # Notifications arrive in commit order: a later one from elsewhere comes first only if the
        # append sent none.
        await pool.execute(f"NOTIFY {SCHEMA}_events, 'marker'")
        assert await asyncio.wait_for(heard.get(), 5) == "marker"
    finally:
        await listener.close()


async def test_a_process_ignores_its_own_notifications_and_hears_the_others(database_url):
    ours, theirs = Wakeup(database_url, SCHEMA), Wakeup(database_url, SCHEMA)
    try:
        await asyncio.gather(*(w.wait(w.subscribe(), 0.01) for w in (ours, theirs)))  # start listening
        await asyncio.wait_for(asyncio.gather(ours.listening.wait(), theirs.listening.wait()), 5)

        ours.appended()
        await _sent(ours, 1)
        theirs.appended()  # after ours: delivered to ``ours`` after its own
        await _sent(theirs, 1)

        async def heard_one() -> bool:
            return ours.notifications_heard >= 1 and theirs.notifications_heard >= 1

        await eventually(heard_one, 5, 0.01)
        assert (ours.notifications_heard, theirs.notifications_heard) == (1, 1)
    finally:
        await asyncio.gather(ours.close(), theirs.close())


async def test_a_burst_of_appends_costs_one_notify_then_one_for_the_rest(database_url):
    writer = Wakeup(database_url, SCHEMA, notify_interval=1.0)
    reader = Wakeup(database_url, SCHEMA)
    try:
        await reader.wait(reader.subscribe(), 0.01)
        await asyncio.wait_for(reader.listening.wait(), 5)
        for _ in range(200):  # well within the interval
            writer.appended()
            await asyncio.sleep(0)
        await _sent(writer, 1)
        assert writer.notifications_sent == 1  # the first at once, the rest wait for the interval
        await _sent(writer, 2)  # the rest together, once the interval is over
        await asyncio.sleep(0)
        assert writer._sender is not None
        await asyncio.wait_for(writer._sender, 5)
        assert writer.notifications_sent == 2
    finally:
        await asyncio.gather(writer.close(), reader.close())


async def _sent(wakeup: Wakeup, count: int) -> None:
    async def sent() -> bool:
        return wakeup.notifications_sent >= count

    await eventually(sent, 5, 0.005)
