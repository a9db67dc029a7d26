"""Statements composed into one: every one runs once, with its own arguments, in one round trip."""

import asyncpg
import pytest

from lf_pg import Statement, compose, execute_all


@pytest.fixture
async def conn(database_url):
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "CREATE TEMP TABLE heads (id text PRIMARY KEY, version int);"
        " CREATE TEMP TABLE rows_ (id text, n int); CREATE TEMP TABLE totals (id text PRIMARY KEY, n int)"
    )
    yield conn
    await conn.close()


async def test_each_statement_runs_once_with_its_own_parameters(conn):
    await conn.execute("INSERT INTO heads VALUES ('a', 1); INSERT INTO totals VALUES ('a', 10)")
    composed = compose(
        [
            Statement("UPDATE heads SET version = $2 WHERE id = $1 RETURNING id", ("a", 2), name="head"),
            Statement(
                "INSERT INTO rows_ (id, n) SELECT head.id, x FROM head, unnest($1::int[]) AS x RETURNING n",
                ([5, 6],),
                name="inserted",
            ),
            Statement("UPDATE totals SET n = n + $2 WHERE id = $1", ("a", 11)),
        ],
        answer="inserted",
    )
    rows = await conn.fetch(composed.sql, *composed.args)
    assert sorted(r["n"] for r in rows) == [5, 6]
    assert await conn.fetchval("SELECT version FROM heads") == 2
    assert await conn.fetchval("SELECT n FROM totals") == 21


async def test_a_statement_reading_an_empty_head_writes_nothing(conn):
    composed = compose(
        [
            Statement("UPDATE heads SET version = 9 WHERE id = $1 RETURNING id", ("missing",), name="head"),
            Statement("INSERT INTO rows_ SELECT head.id, 1 FROM head RETURNING n", (), name="inserted"),
        ],
        answer="inserted",
    )
    assert await conn.fetch(composed.sql, *composed.args) == []
    assert await conn.fetchval("SELECT count(*) FROM rows_") == 0


async def test_execute_all_runs_every_statement(conn):
    await execute_all(
        conn,
        [
            Statement("INSERT INTO totals VALUES ($1, $2)", ("b", 1)),
            Statement("INSERT INTO rows_ VALUES ($1, $2)", ("b", 2)),
        ],
    )
    assert await conn.fetchval("SELECT n FROM totals WHERE id = 'b'") == 1
    assert await conn.fetchval("SELECT n FROM rows_ WHERE id = 'b'") == 2
