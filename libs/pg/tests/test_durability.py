"""``WITHOUT_FLUSH``: the transaction whose statement carries it commits without waiting for the
WAL flush, and only that transaction; a function cannot do it for its caller with a ``SET`` clause."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from lf_pg import WITHOUT_FLUSH
from lf_testing.durability import CommitSettings


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
    yield conn
    await conn.close()


@pytest.fixture
async def settings(conn: asyncpg.Connection) -> CommitSettings:
    settings = await CommitSettings.install(conn)
    await settings.watch("public.counters")
    return settings


async def test_a_statement_with_it_commits_off_and_the_next_one_on_again(conn, settings) -> None:
    await conn.fetchval(f"INSERT INTO counters VALUES (1, 0) RETURNING {WITHOUT_FLUSH}")
    await conn.execute("UPDATE counters SET n = n + 1")

    assert await settings.of("public.counters") == ["off", "on"]


async def test_it_covers_the_whole_explicit_transaction_it_is_sent_in(conn, settings) -> None:
    async with conn.transaction():
        await conn.execute("INSERT INTO counters VALUES (1, 0)")  # written before it is set
        await conn.fetchval(f"SELECT {WITHOUT_FLUSH}")

    # Which is why it never goes in a transaction that records money or an event.
    assert await settings.of("public.counters") == ["off"]


async def test_a_function_set_clause_does_not_reach_the_commit(conn, settings) -> None:
    await conn.execute(
        "CREATE FUNCTION bump() RETURNS void LANGUAGE sql SET synchronous_commit = off"
        " AS $$ INSERT INTO counters VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = counters.n + 1 $$"
    )

    await conn.execute("SELECT bump()")

    assert await settings.of("public.counters") == ["on"]


async def test_the_pooled_connection_goes_back_unchanged(database_url, conn, settings) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await pool.fetchval(f"INSERT INTO counters VALUES (1, 0) RETURNING {WITHOUT_FLUSH}")
        await pool.execute("UPDATE counters SET n = n + 1")
        assert await pool.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()

    assert await settings.of("public.counters") == ["off", "on"]
