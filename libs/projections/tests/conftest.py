"""A small projection of the tests' own, ``tally``, and a schema to run it in.

``tally`` counts each stream's ``Counted`` events (and passes ``Ignored`` ones by): an increment, not
an upsert of a value, so an event applied twice shows as a count too high and one skipped as a count
too low. Helpers are fixtures because test modules are imported in importlib mode and cannot import
each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

import lf_eventstore
import lf_projections
from lf_eventstore import NewEvent, RecordedEvent, append
from lf_pg import create_pool, migrate
from lf_projections import Projection

SCHEMA = "tallies"


async def counted(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "INSERT INTO tally (stream_id, events) VALUES ($1, 1)"
        " ON CONFLICT (stream_id) DO UPDATE SET events = tally.events + 1",
        event.stream_id,
    )


TALLY = Projection("tally", ("tally",), {"Counted": counted})


@pytest.fixture
def tally() -> Projection:
    return TALLY


@pytest.fixture
async def tally_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on schema ``tallies``: the event log, checkpoints and leases, and the empty tally table."""
    await migrate(database_url, SCHEMA, [lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS])
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=6)
    await pool.execute("CREATE TABLE tally (stream_id text PRIMARY KEY, events bigint NOT NULL)")
    yield pool
    await pool.close()


Record = Callable[..., Awaitable[list[RecordedEvent]]]


@pytest.fixture
def record(tally_pool: asyncpg.Pool) -> Record:
    """``await record("s-1", "Counted", "Ignored", ...)``: append those events to the stream, in a
    transaction of their own, after what it holds."""

    async def record(stream: str, *types: str) -> list[RecordedEvent]:
        async with tally_pool.acquire() as conn, conn.transaction():
            version = await conn.fetchval(
                "SELECT coalesce((SELECT version FROM streams WHERE stream_id = $1), 0)", stream
            )
            return await append(conn, stream, version, [NewEvent(t, {}) for t in types])

    return record


@pytest.fixture
def tallies(tally_pool: asyncpg.Pool) -> Callable[[], Awaitable[dict[str, int]]]:
    """The live tally table as ``{stream: count}``."""

    async def tallies() -> dict[str, int]:
        rows = await tally_pool.fetch("SELECT stream_id, events FROM tally")
        return {row["stream_id"]: row["events"] for row in rows}

    return tallies


@pytest.fixture
def expected(tally_pool: asyncpg.Pool) -> Callable[[], Awaitable[dict[str, int]]]:
    """What the log says the tally should be: each stream's ``Counted`` events."""

    async def expected() -> dict[str, int]:
        rows = await tally_pool.fetch(
            "SELECT stream_id, count(*) AS n FROM events WHERE type = 'Counted' GROUP BY stream_id"
        )
        return {row["stream_id"]: row["n"] for row in rows}

    return expected
