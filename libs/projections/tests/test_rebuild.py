"""Rebuilding a projection: the log replayed into fresh tables that are swapped in for the live ones,
and a followed projection's checkpoint moved to where the replay ended, so that its runner goes on
from there without applying anything twice or skipping anything."""

from __future__ import annotations

import asyncio
import contextlib

from lf_eventstore import Wakeup
from lf_pg import shadow_schema
from lf_pg.pool import connect
from lf_projections import FollowerRunner, catch_up, rebuild
from lf_testing.waiting import eventually

SCHEMA = "tallies"  # conftest's


async def all_below_the_horizon(pool) -> bool:
    return await pool.fetchval(
        "SELECT bool_and(transaction_id < pg_snapshot_xmin(pg_current_snapshot())) FROM events"
    )


async def table_oid(pool) -> int:
    return await pool.fetchval("SELECT to_regclass('tallies.tally')::oid")


async def test_a_rebuild_swaps_in_the_replay_for_drifted_live_rows_and_moves_the_checkpoint(
    database_url, tally_pool, tally, record, tallies, expected
):
    await record("s-1", "Counted", "Counted")
    await record("s-2", "Counted", "Ignored")
    await catch_up(tally_pool, tally)
    # Live rows that drifted from the log: one wrong, one lost, one that no event explains.
    await tally_pool.execute("UPDATE tally SET events = 99 WHERE stream_id = 's-1'")
    await tally_pool.execute("DELETE FROM tally WHERE stream_id = 's-2'")
    await tally_pool.execute("INSERT INTO tally VALUES ('nobody', 7)")
    await record("s-3", "Counted")  # not followed yet: the runner lags
    before = await table_oid(tally_pool)
    # A follower reads below the oldest transaction running anywhere in the cluster (transaction ids
    # are cluster-wide): on a busy machine, another database's transaction can hold s-3 above it.
    await eventually(lambda: all_below_the_horizon(tally_pool), timeout=30)

    conn = await connect(database_url, SCHEMA)
    try:
        assert await rebuild(conn, SCHEMA, tally, follower_name=tally.name) == 3
    finally:
        await conn.close()

    assert await tallies() == {"s-1": 2, "s-2": 1, "s-3": 1} == await expected()
    assert await table_oid(tally_pool) != before  # swapped in, not rewritten in place
    shadow = await tally_pool.fetchval("SELECT to_regclass($1)", f"{shadow_schema(SCHEMA)}.tally")
    assert shadow is None  # the fresh table moved out of the shadow schema
    # The runner goes on from the replay's end: later events once, earlier ones not again.
    await catch_up(tally_pool, tally)
    assert await tallies() == {"s-1": 2, "s-2": 1, "s-3": 1}
    await record("s-1", "Counted")
    await catch_up(tally_pool, tally)
    assert await tallies() == {"s-1": 3, "s-2": 1, "s-3": 1}


async def test_an_inline_rebuild_replays_every_committed_event_and_keeps_no_checkpoint(
    database_url, tally_pool, tally, record, tallies, expected
):
    await record("s-1", "Counted", "Counted", "Ignored")
    await record("s-2", "Counted")
    await tally_pool.execute("INSERT INTO tally VALUES ('s-1', 5)")  # what a bug left behind

    conn = await connect(database_url, SCHEMA)
    try:
        assert await rebuild(conn, SCHEMA, tally) == 2
    finally:
        await conn.close()

    assert await tallies() == {"s-1": 2, "s-2": 1} == await expected()
    assert await tally_pool.fetchval("SELECT count(*) FROM follower_checkpoints") == 0


async def test_a_rebuild_beside_its_running_follower_and_busy_writers_loses_and_doubles_nothing(
    database_url, tally_pool, tally, record, tallies, expected
):
    for n in range(20):
        await record(f"s-{n % 5}", "Counted")
    wakeup = Wakeup(database_url, SCHEMA)
    runner = FollowerRunner(tally, tally_pool, wakeup, poll_seconds=0.05, lease_seconds=2)
    stop = asyncio.Event()

    async def write(k: int) -> None:
        n = 0
        while not stop.is_set():
            await record(f"w{k}-{n % 3}", "Counted", "Ignored")  # streams of its own: no conflicts
            n += 1

    running = asyncio.create_task(runner.run())
    writers = [asyncio.create_task(write(k)) for k in range(3)]
    try:
        await asyncio.sleep(0.3)
        conn = await connect(database_url, SCHEMA)
        try:
            await rebuild(conn, SCHEMA, tally, follower_name=tally.name)
        finally:
            await conn.close()
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*writers)

        async def caught_up() -> bool:
            return await tallies() == await expected()

        deadline = asyncio.get_running_loop().time() + 30  # reading waits for the horizon
        while not await caught_up():
            assert asyncio.get_running_loop().time() < deadline, (await tallies(), await expected())
            await asyncio.sleep(0.05)
        assert sum((await expected()).values()) > 20  # the writers wrote during the rebuild
    finally:
        stop.set()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await asyncio.gather(*writers, return_exceptions=True)
        await wakeup.close()
