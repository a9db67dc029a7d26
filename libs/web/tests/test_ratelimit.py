import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from lf_pg import create_pool, migrate
from lf_web import MIGRATIONS, RateLimiter

SCHEMA = "limits"


@pytest.fixture
async def pools(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """Two pools on one database: two replicas of a service."""
    await migrate(database_url, SCHEMA, [MIGRATIONS])
    first = await create_pool(database_url, SCHEMA)
    second = await create_pool(database_url, SCHEMA)
    yield first, second
    await first.close()
    await second.close()


async def test_burst_of_limit_is_allowed_then_refused_with_a_retry_delay(pools) -> None:
    limiter = RateLimiter(pools[0])

    decisions = [await limiter.check("lenser:1", limit=3, period_seconds=60) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert [d.retry_after_seconds for d in decisions[:3]] == [0, 0, 0]
    assert 19 <= decisions[3].retry_after_seconds <= 20  # one emission interval: 60 s / 3
    assert 0 < decisions[3].reset_epoch - time.time() <= 61


async def test_keys_are_limited_independently(pools) -> None:
    limiter = RateLimiter(pools[0])
    await limiter.check("a", limit=1)

    assert (await limiter.check("b", limit=1)).allowed
    assert not (await limiter.check("a", limit=1)).allowed


async def test_allowance_is_shared_by_replicas_on_the_same_database(pools) -> None:
    first, second = RateLimiter(pools[0]), RateLimiter(pools[1])

    allowed = [
        (await first.check("shared", 3)).allowed,
        (await second.check("shared", 3)).allowed,
        (await first.check("shared", 3)).allowed,
        (await second.check("shared", 3)).allowed,
        (await first.check("shared", 3)).allowed,
    ]

    assert allowed == [True, True, True, False, False]


async def test_concurrent_checks_allow_exactly_the_limit(pools) -> None:
    limiters = [RateLimiter(pools[0]), RateLimiter(pools[1])]

    decisions = await asyncio.gather(*(limiters[i % 2].check("race", 50, 3600) for i in range(200)))

    assert sum(decision.allowed for decision in decisions) == 50


async def test_refused_key_is_allowed_again_after_one_emission_interval(pools) -> None:
    limiter = RateLimiter(pools[0])
    for _ in range(4):
        await limiter.check("refill", limit=4, period_seconds=2)
    assert not (await limiter.check("refill", limit=4, period_seconds=2)).allowed

    await asyncio.sleep(0.55)  # the interval is 500 ms

    assert (await limiter.check("refill", limit=4, period_seconds=2)).allowed


async def test_route_over_its_limit_is_429_rate_limited_with_retry_after(client: TestClient) -> None:
    first, second, third = [await client.get("/limited") for _ in range(3)]

    assert (first.status, second.status) == (200, 200)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == ("1", "0")
    assert int(first.headers["X-RateLimit-Reset"]) > time.time()
    assert third.status == 429
    assert (await third.json())["error"]["code"] == "rate_limited"
    assert int(third.headers["Retry-After"]) >= 1
    assert third.headers["X-RateLimit-Limit"] == "2"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in third.headers
    assert "X-Request-Id" in third.headers
