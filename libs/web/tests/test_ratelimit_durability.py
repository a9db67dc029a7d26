"""Rate-limit admissions and pruning commit without waiting for the WAL flush, and only they:
``rate_limit_admit`` does not decide it for a transaction it is called in."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from lf_pg import create_pool, migrate
from lf_testing.durability import CommitSettings
from lf_web import MIGRATIONS, RateLimiter

SCHEMA = "limits"
TABLE = f"{SCHEMA}.rate_limits"


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await migrate(database_url, SCHEMA, [MIGRATIONS])
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def settings(admin: asyncpg.Connection) -> CommitSettings:
    settings = await CommitSettings.install(admin)
    await settings.watch(TABLE)
    return settings


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, SCHEMA)
    yield pool
    await pool.close()


async def test_an_admission_commits_without_waiting_for_the_flush(pool, settings) -> None:
    limiter = RateLimiter(pool)

    assert (await limiter.check("k", limit=1)).allowed
    assert not (await limiter.check("k", limit=1)).allowed  # a refusal writes the row too

    assert await settings.of(TABLE) == ["off", "off"]


async def test_pruning_commits_without_waiting_for_the_flush(admin, pool, settings) -> None:
    await admin.execute(f"INSERT INTO {TABLE} (key, expires_us) VALUES ('gone', 1)")
    await settings.forget()

    assert await RateLimiter(pool).prune() == 1

    assert await settings.of(TABLE) == ["off"]


async def test_the_function_leaves_a_callers_transaction_flushed(pool, settings) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # e.g. a command that also records money: its commit must still wait for the flush.
        await conn.fetchrow("SELECT * FROM rate_limit_admit('k', 5, 60000000)")

    assert await settings.of(TABLE) == ["on"]
