"""Followers wake without a NOTIFY in every append (issue 8): from another process's throttled
NOTIFY, from their own process's appends directly, after a wake-up that came too early (the
writer's commit behind the reading horizon), and by their poll when nobody told them.

Every runner polls every 30 s, and each test waits at most 10 s: it passes only by the wake-up it
names."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from lf_eventstore import NewEvent, RecordedEvent, Wakeup, append, note_append
from lf_projections import FollowerRunner, Projection
from lf_testing.waiting import eventually

SCHEMA = "tallies"
LONG_POLL = 30.0


@contextlib.asynccontextmanager
async def following(
    projection: Projection, pool: asyncpg.Pool, wakeup: Wakeup, *, poll: float = LONG_POLL
) -> AsyncIterator[None]:
    runner = FollowerRunner(projection, pool, wakeup, poll_seconds=poll, lease_seconds=30)
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def idle(pool: asyncpg.Pool, name: str) -> None:
    """Until the follower has caught up with the empty log (and so waits on its wake-up)."""

    async def checkpointed() -> bool:
        return bool(await pool.fetchval("SELECT true FROM follower_checkpoints WHERE name = $1", name))

    await eventually(checkpointed, 10, 0.01)
    await asyncio.sleep(0.05)


@pytest.fixture
async def wakeups(database_url: str) -> AsyncIterator[list[Wakeup]]:
    made: list[Wakeup] = []
    yield made
    await asyncio.gather(*(w.close() for w in made))


def counted(tallies, stream: str, n: int):
    async def check() -> bool:
        return (await tallies()).get(stream) == n

    check.__name__ = f"{stream} counted {n}"
    return check


async def test_a_follower_is_woken_by_an_append_of_another_process(
    database_url, tally_pool, tally, record, tallies, wakeups
):
    reader, writer = Wakeup(database_url, SCHEMA), Wakeup(database_url, SCHEMA)  # two processes
    wakeups += [reader, writer]
    async with following(tally, tally_pool, reader):
        await idle(tally_pool, tally.name)
        await asyncio.wait_for(reader.listening.wait(), 5)
        await record("s-1", "Counted")
        writer.appended()  # what the writer's CommandRunner calls after its COMMIT
        await eventually(counted(tallies, "s-1", 1), 10, 0.01)
    assert reader.notifications_heard >= 1


async def test_a_processs_own_append_wakes_its_follower_without_any_notify(
    tally_pool, tally, record, tallies, wakeups, unused_tcp_port
):
    # A process whose LISTEN connection cannot even connect: nothing can reach it by NOTIFY.
    unreachable = Wakeup(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/postgres", SCHEMA)
    wakeups.append(unreachable)
    async with following(tally, tally_pool, unreachable):
        await idle(tally_pool, tally.name)
        await record("s-1", "Counted")
        unreachable.appended()
        await eventually(counted(tallies, "s-1", 1), 10, 0.01)
    assert unreachable.notifications_sent == 0 and not unreachable.listening.is_set()


async def test_an_append_nobody_announces_is_found_by_the_poll(
    database_url, tally_pool, tally, record, tallies, wakeups
):
    quiet = Wakeup(database_url, SCHEMA)
    wakeups.append(quiet)
    async with following(tally, tally_pool, quiet, poll=0.2):
        await idle(tally_pool, tally.name)
        await record("s-1", "Counted")  # outside any runner, and no trigger notifies any more
        await eventually(counted(tallies, "s-1", 1), 10, 0.01)
    assert quiet.notifications_heard == 0


async def test_a_follower_woken_before_the_append_is_readable_looks_again_soon(
    database_url, tally_pool, tally, record, tallies, wakeups
):
    wakeup = Wakeup(database_url, SCHEMA)
    wakeups.append(wakeup)
    async with following(tally, tally_pool, wakeup):
        await idle(tally_pool, tally.name)
        older = await asyncpg.connect(database_url)
        try:
            # An older transaction still open: the append commits behind the reading horizon.
            async with older.transaction():
                await older.fetchval("SELECT pg_current_xact_id()")
                await record("s-1", "Counted")
                wakeup.appended()
                await asyncio.sleep(0.3)  # the follower looked, found nothing readable yet
                assert (await tallies()).get("s-1") is None
            # That transaction ended without appending: nobody wakes the follower again.
        finally:
            await older.close()
        await eventually(counted(tallies, "s-1", 1), 10, 0.01)


class Forwarder:
    """A follower whose handler appends (like billing's delivery processor): each ``Counted`` event
    of stream ``in-*`` becomes one in ``out-*``, in the batch's transaction."""

    name = "forwarder"
    types = ["Counted"]

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for event in events:
            if event.stream_id.startswith("in-"):
                out = "out-" + event.stream_id[3:]
                version = await conn.fetchval(
                    "SELECT coalesce((SELECT version FROM streams WHERE stream_id = $1), 0)", out
                )
                await append(conn, out, version, [NewEvent("Counted", {})])
                note_append()  # what a runner bound to this connection does


async def test_a_follower_batch_that_appends_wakes_the_other_followers_once_committed(
    database_url, tally_pool, tally, record, tallies, wakeups
):
    wakeup = Wakeup(database_url, SCHEMA)
    wakeups.append(wakeup)
    async with following(Forwarder(), tally_pool, wakeup), following(tally, tally_pool, wakeup):
        await idle(tally_pool, tally.name)
        await idle(tally_pool, Forwarder.name)
        await record("in-1", "Counted")
        wakeup.appended()
        await eventually(counted(tallies, "out-1", 1), 10, 0.01)
