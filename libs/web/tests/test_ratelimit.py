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
    # The first admission leaves the minute's window 60 s after it was made.
    assert 59 <= decisions[3].retry_after_seconds <= 60
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


async def test_no_request_passes_until_the_first_admission_leaves_the_window(pools) -> None:
    """At the boundary: a burst of N, then nothing until a whole period after its first request
    (GCRA let one through after period / N)."""
    limiter = RateLimiter(pools[0])
    started = time.monotonic()
    assert all([(await limiter.check("edge", limit=4, period_seconds=2)).allowed for _ in range(4)])

    while not (await limiter.check("edge", limit=4, period_seconds=2)).allowed:
        assert time.monotonic() - started < 5, "never admitted again"
        await asyncio.sleep(0.02)

    assert time.monotonic() - started >= 1.98  # a period after the first admission (DB clock)


async def test_any_window_of_the_period_admits_at_most_the_limit(pools) -> None:
    """A steady stream for two periods: N at the start, N again a period later, never 2N in one."""
    limiter = RateLimiter(pools[0])
    admitted: list[float] = []
    started = time.monotonic()
    while (now := time.monotonic()) - started < 3.9:
        if (await limiter.check("stream", limit=5, period_seconds=2)).allowed:
            admitted.append(now)
        await asyncio.sleep(0.05)

    assert len(admitted) == 10
    for i in range(len(admitted) - 5):
        # the 6th admission after any one is at least a period later
        assert admitted[i + 5] - admitted[i] >= 1.95, admitted


async def test_expired_keys_are_pruned_and_live_ones_kept(pools) -> None:
    limiter = RateLimiter(pools[0])
    await limiter.check("old", limit=2, period_seconds=1)
    await limiter.check("live", limit=2, period_seconds=60)
    await asyncio.sleep(1.1)

    assert await limiter.prune() == 1

    keys = {row["key"] for row in await pools[0].fetch("SELECT key FROM rate_limits")}
    assert keys == {"live"}
    # A pruned key starts afresh, exactly as if it had expired in place.
    assert (await limiter.check("old", limit=2, period_seconds=1)).remaining == 1


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
