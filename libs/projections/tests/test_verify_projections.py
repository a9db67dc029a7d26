"""Comparing a projection's live tables with a replay of the log, without disturbing the live side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg
import pytest

import lf_eventstore
import lf_projections
from lf_eventstore import NewEvent, RecordedEvent, append
from lf_eventstore.verify import NOTHING, Difference
from lf_pg import create_pool, migrate
from lf_pg.pool import connect
from lf_projections import Projection, catch_up
from lf_projections.verify import verify_projection

SCHEMA = "store"


async def added(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "INSERT INTO totals (name, total) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET total = totals.total + $2",
        event.data["name"],
        event.data["n"],
    )


async def noted(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    data = event.data
    await conn.execute("INSERT INTO notes (name, note) VALUES ($1, $2)", data["name"], data["note"])


TOTALS = Projection("totals", ("totals", "notes"), {"Added": added, "Noted": noted})


@pytest.fixture
async def pool(database_url):
    await migrate(database_url, SCHEMA, [lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS])
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=4)
    await pool.execute(
        "CREATE TABLE totals (name text PRIMARY KEY, total bigint NOT NULL CHECK (total >= 0));"
        "CREATE TABLE notes (name text NOT NULL, note text)"  # no primary key: keyed by every column
    )
    yield pool
    await pool.close()


async def record(pool, stream: str, *events: tuple[str, dict], inline: bool = True) -> None:
    """Append to a new stream; ``inline``: the projection is written in the same transaction."""
    async with pool.acquire() as conn, conn.transaction():
        recorded = await append(conn, stream, 0, [NewEvent(type_, data) for type_, data in events])
        if inline:
            await TOTALS.apply(conn, recorded)


async def verify_totals(database_url, *, followed: bool = False, projection: Projection = TOTALS):
    conn = await connect(database_url, SCHEMA)
    scratch = await connect(database_url, SCHEMA)
    try:
        # A followed projection is compared at its runner's checkpoint: it says so itself.
        checked = replace(projection, followed=True) if followed else projection
        return await verify_projection(conn, scratch, SCHEMA, checked)
    finally:
        await scratch.close()
        await conn.close()


@pytest.fixture
async def history(pool):
    await record(pool, "s-1", ("Added", {"name": "a", "n": 2}), ("Noted", {"name": "a", "note": "hi"}))
    await record(pool, "s-2", ("Added", {"name": "a", "n": 3}), ("Added", {"name": "b", "n": 1}))
    await record(pool, "s-3", ("Noted", {"name": "b", "note": None}), ("Noted", {"name": "b", "note": "x"}))


async def test_live_tables_equal_to_the_replay_have_no_differences(database_url, history):
    findings = await verify_totals(database_url)
    assert findings.differences == []
    assert findings.checked == "6 events replayed at the head of the log, 5 rows compared"


async def test_changed_missing_and_extra_rows_are_each_reported_by_key(database_url, pool, history):
    await pool.execute("UPDATE totals SET total = 50 WHERE name = 'a'")
    await pool.execute("DELETE FROM totals WHERE name = 'b'")
    await pool.execute("INSERT INTO totals VALUES ('c', 9)")
    await pool.execute("INSERT INTO notes VALUES ('a', 'hi')")  # a duplicate: no key tells them apart
    await pool.execute("DELETE FROM notes WHERE name = 'b' AND note IS NULL")

    findings = await verify_totals(database_url)

    assert findings.differences == [
        Difference("totals", "name=a", {"total": 5}, {"total": 50}),
        Difference("totals", "name=b", {"name": "b", "total": 1}, NOTHING),
        Difference("totals", "name=c", NOTHING, {"name": "c", "total": 9}),
        Difference("notes", "name=a, note=hi", NOTHING, {"name": "a", "note": "hi"}),
        Difference("notes", "name=b, note=null", {"name": "b", "note": None}, NOTHING),
    ]


async def test_a_followed_projection_is_compared_at_its_checkpoint(database_url, pool):
    await record(pool, "s-1", ("Added", {"name": "a", "n": 2}), inline=False)
    await catch_up(pool, TOTALS)
    await record(pool, "s-2", ("Added", {"name": "a", "n": 3}), inline=False)  # not followed yet

    findings = await verify_totals(database_url, followed=True)
    assert findings.differences == []
    assert findings.checked.startswith("1 events replayed at its checkpoint (")

    findings = await verify_totals(database_url)  # as if it were inline: it lags the log
    assert findings.differences == [Difference("totals", "name=a", {"total": 5}, {"total": 2})]


async def test_a_log_the_projection_cannot_replay_is_reported_not_raised(database_url, pool, history):
    await record(pool, "s-4", ("Added", {"name": "b", "n": -5}), inline=False)  # total would go below 0
    findings = await verify_totals(database_url)
    [difference] = findings.differences
    assert (difference.where, difference.expected) == ("totals", "a replay that applies")
    assert difference.found.startswith("CheckViolationError")


def pausing(hook: Callable[[asyncpg.Connection], Awaitable[None]]) -> Projection:
    """TOTALS, calling ``hook`` on the replay's connection before its first batch."""
    called = False

    async def first(conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        nonlocal called
        if not called:
            called = True
            await hook(conn)

    return Projection("totals", TOTALS.tables, TOTALS.handlers, batch=first, batch_types=("Added",))


async def test_while_it_replays_verify_holds_no_transaction_id_and_no_lock_on_the_live_tables(
    database_url, pool, history
):
    seen: dict[str, object] = {}

    async def meanwhile(replaying: asyncpg.Connection) -> None:
        # Another transaction id anywhere would hold back every reader's horizon.
        seen["others_with_a_transaction_id"] = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_xid IS NOT NULL AND pid <> $1",
            await replaying.fetchval("SELECT pg_backend_pid()"),
        )
        # A live write and an exclusive lock (what a rebuild's swap takes) go straight through.
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '1s'")
            await conn.execute("LOCK TABLE totals, notes IN ACCESS EXCLUSIVE MODE")

    findings = await asyncio.wait_for(verify_totals(database_url, projection=pausing(meanwhile)), 10)
    assert seen == {"others_with_a_transaction_id": 0}
    assert findings.differences == []


async def test_a_table_a_rebuild_swaps_in_while_verify_runs_is_reported_as_run_again(
    database_url, pool, history
):
    async def rebuild_swap(_: asyncpg.Connection) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TABLE fresh (LIKE totals INCLUDING ALL)")
            await conn.execute("INSERT INTO fresh SELECT * FROM totals")
            await conn.execute("DROP TABLE totals")
            await conn.execute("ALTER TABLE fresh RENAME TO totals")

    findings = await asyncio.wait_for(verify_totals(database_url, projection=pausing(rebuild_swap)), 10)
    [difference] = findings.differences
    assert difference.found.endswith("run again")
