import asyncio

import asyncpg
import pytest

from lf_eventstore import (
    MIGRATIONS,
    START,
    Checkpoint,
    ConcurrencyError,
    NewEvent,
    PositionOrderReader,
    append,
    load_stream,
    read_after,
)
from lf_pg import create_pool, migrate


@pytest.fixture
async def pool(database_url):
    await migrate(database_url, "store", [MIGRATIONS])
    pool = await create_pool(database_url, "store", min_size=1, max_size=20)
    yield pool
    await pool.close()


async def test_appended_events_load_back_in_version_order(pool):
    async with pool.acquire() as conn, conn.transaction():
        await append(conn, "s-1", 0, [NewEvent("Opened", {"a": 1}), NewEvent("Credited", {"n": 5})])
    async with pool.acquire() as conn:
        state = await load_stream(conn, "s-1")
    assert state.version == 2
    assert [(e.version, e.type, e.data) for e in state.events] == [
        (1, "Opened", {"a": 1}),
        (2, "Credited", {"n": 5}),
    ]


async def test_a_stale_expected_version_is_a_conflict(pool):
    async with pool.acquire() as conn:
        await append(conn, "s-1", 0, [NewEvent("Opened", {})])
        with pytest.raises(ConcurrencyError):
            await append(conn, "s-1", 0, [NewEvent("Opened", {})])
        with pytest.raises(ConcurrencyError):
            await append(conn, "s-1", 5, [NewEvent("Later", {})])


async def test_the_log_refuses_update_delete_and_truncate(pool):
    async with pool.acquire() as conn:
        await append(conn, "s-1", 0, [NewEvent("Opened", {})])
        for statement in ("UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM events") == 1


async def test_load_reads_only_events_after_the_snapshot(pool):
    async with pool.acquire() as conn:
        await append(conn, "s-1", 0, [NewEvent("E", {"i": i}) for i in range(3)], snapshot={"sum": 3})
        await append(conn, "s-1", 3, [NewEvent("E", {"i": 9})])
        state = await load_stream(conn, "s-1")
    assert state.snapshot == {"sum": 3} and state.snapshot_version == 3
    assert [e.data for e in state.events] == [{"i": 9}]


async def test_concurrent_commands_on_one_stream_queue_on_the_lock_instead_of_failing(pool):
    async with pool.acquire() as conn:
        await append(conn, "hot", 0, [NewEvent("Opened", {})])

    async def command():
        async with pool.acquire() as conn, conn.transaction():
            state = await load_stream(conn, "hot", lock=True)
            await append(conn, "hot", state.version, [NewEvent("Bumped", {})])

    await asyncio.gather(*(command() for _ in range(50)))
    async with pool.acquire() as conn:
        assert (await load_stream(conn, "hot")).version == 51


async def test_a_reader_never_skips_an_event_that_commits_after_a_later_one(pool):
    slow = await pool.acquire()
    try:
        slow_tx = slow.transaction()
        await slow_tx.start()
        await append(slow, "slow", 0, [NewEvent("Slow", {})])  # takes the lower position
        async with pool.acquire() as conn:
            await append(conn, "fast", 0, [NewEvent("Fast", {})])
            # The slow transaction is still open: the reader must not move past it yet.
            assert await read_after(conn, START) == []
        await slow_tx.commit()
    finally:
        await pool.release(slow)
    async with pool.acquire() as conn:
        seen = await read_once_visible(conn, START, until=2)
    assert sorted(e.type for e in seen) == ["Fast", "Slow"]


async def read_once_visible(conn, after, *, until: int = 1, **options):
    """Read, waiting out transactions of other tests (any database of the cluster) that hold the
    reading horizon back for a moment, until at least ``until`` events are readable."""
    events = []
    for _ in range(600):
        if len(events := await read_after(conn, after, **options)) >= until:
            return events
        await asyncio.sleep(0.05)
    return events


async def test_reading_resumes_after_a_checkpoint_and_filters_by_type(pool):
    async with pool.acquire() as conn:
        await append(conn, "s", 0, [NewEvent("A", {}), NewEvent("B", {}), NewEvent("A", {})])
        first = await read_once_visible(conn, START, limit=1)
        rest = await read_after(conn, Checkpoint(first[0].transaction_id, first[0].position), types=["A"])
    assert [e.type for e in first] == ["A"]
    assert [e.version for e in rest] == [3]


async def test_position_order_reading_picks_up_a_transaction_that_commits_behind_it(pool):
    reader = PositionOrderReader()
    async with pool.acquire() as conn:
        await append(conn, "a", 0, [NewEvent("A1", {})])
    slow = await pool.acquire()
    try:
        slow_tx = slow.transaction()
        await slow_tx.start()
        await append(slow, "b", 0, [NewEvent("B1", {})])  # takes the lower position
        async with pool.acquire() as conn:
            await append(conn, "a", 1, [NewEvent("A2", {})])
            async with conn.transaction(isolation="repeatable_read"):
                first, more = await reader.read(conn)
            assert ([e.type for e in first], more) == (["A1", "A2"], False)
            await slow_tx.commit()
            async with conn.transaction(isolation="repeatable_read"):
                late, _ = await reader.read(conn)
            async with conn.transaction(isolation="repeatable_read"):
                after, _ = await reader.read(conn)
    finally:
        await pool.release(slow)
    assert [e.type for e in late] == ["B1"]  # behind the position read up to, and not skipped
    assert after == []
