# ruff: noqa: E501 - long log lines
"""What a rate-limit admission costs with ``synchronous_commit`` off (as ``RateLimiter.check`` sends
it: ``lf_pg.WITHOUT_FLUSH`` in its statement) and on (the same function, waiting for the flush).

Both run on the wallet schema's ``rate_limits`` through the same pool, alternating in short slices so
that the machine's other load falls on both alike: one client (latency: what a rate-limited request
waits) and ``C`` clients (throughput: concurrent commits share their flushes, so the gap narrows).
Keys are spread over 1,000 so that no row lock is contended; 50 admissions per key and second.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import asyncpg
from common import logger, summary

from lf_web.ratelimit import ADMIT

log = logger("bench")
FLUSHED = "SELECT * FROM rate_limit_admit($1, $2, $3)"  # ADMIT without WITHOUT_FLUSH
KEYS = 1000
LIMIT, PERIOD_US = 50, 1_000_000


@dataclass
class RateLimitCost:
    clients: int
    latency_off: dict[str, float]
    latency_on: dict[str, float]
    rate_off: float
    rate_on: float

    @property
    def latency_ratio(self) -> float:
        """p50 with the flush ÷ p50 without (one client)."""
        return self.latency_on["p50"] / self.latency_off["p50"]

    @property
    def rate_ratio(self) -> float:
        """Admissions/s without the flush ÷ with it (``clients`` clients)."""
        return self.rate_off / self.rate_on


async def _admit(pool: asyncpg.Pool, sql: str) -> None:
    await pool.fetchrow(sql, f"bench:{random.randrange(KEYS)}", LIMIT, PERIOD_US)


async def _slice(pool: asyncpg.Pool, sql: str, clients: int, seconds: float, times: list[float]) -> int:
    done = 0
    end = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < end:
            t = time.perf_counter_ns()
            await _admit(pool, sql)
            times.append((time.perf_counter_ns() - t) / 1e6)
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def rate_limit_phase(pool: asyncpg.Pool, clients: int, seconds: float) -> RateLimitCost:
    """``seconds`` per mode, half single-client, half ``clients``, in 0.5 s alternating slices."""
    slices = max(1, round(seconds / 2 / 0.5))
    single = {ADMIT: [], FLUSHED: []}
    counts = {ADMIT: 0, FLUSHED: 0}
    for sql in (ADMIT, FLUSHED):  # warm both statements
        await _slice(pool, sql, clients, 0.3, [])
    for _ in range(slices):
        for sql in (ADMIT, FLUSHED):
            await _slice(pool, sql, 1, 0.5, single[sql])
            counts[sql] += await _slice(pool, sql, clients, 0.5, [])
    span = slices * 0.5
    result = RateLimitCost(
        clients,
        summary(single[ADMIT]),
        summary(single[FLUSHED]),
        counts[ADMIT] / span,
        counts[FLUSHED] / span,
    )
    log(
        f"rate limit: p50 {result.latency_off['p50']:.3f} ms off / {result.latency_on['p50']:.3f} ms on"
        f" ({result.latency_ratio:.2f}x); {clients} clients {result.rate_off:,.0f}/s off / {result.rate_on:,.0f}/s on"
    )
    return result
