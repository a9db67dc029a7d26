"""Rate limits shared by all replicas of a service: GCRA in PostgreSQL, one row per key.

GCRA keeps a single timestamp per key (the theoretical arrival time, TAT) instead of a window of
counters, so a check is one locked row update. The decision is made inside the database by
``rate_limit_take`` (migration 0001) in whole microseconds; Python only turns the answer into
headers, still in integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from lf_contracts.errors import RATE_LIMITED, ApiError
from lf_pg import MigrationSet
from lf_web.request_context import RESPONSE_HEADERS

MIGRATIONS = MigrationSet("web", "lf_web")

_US = 1_000_000


def _ceil_seconds(microseconds: int) -> int:
    return -(-microseconds // _US)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    """When the key's whole burst is available again (Unix seconds)."""
    retry_after_seconds: int
    """0 when allowed."""

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def check(self, key: str, limit: int, period_seconds: int = 60) -> RateDecision:
        """Take one request from ``key``'s allowance of ``limit`` per ``period_seconds``."""
        period_us = period_seconds * _US
        if not 1 <= limit <= period_us:
            raise ValueError("limit must be between 1 and one per microsecond of the period")
        row = await self._pool.fetchrow("SELECT * FROM rate_limit_take($1, $2, $3)", key, limit, period_us)
        step = period_us // limit
        backlog = row["tat"] - row["now_us"]  # how far the key is ahead of the clock
        if row["allowed"]:
            remaining = (step * limit - backlog) // step
            retry_after = 0
        else:
            remaining = 0
            retry_after = max(1, _ceil_seconds(backlog + step - step * limit))
        return RateDecision(
            allowed=row["allowed"],
            limit=limit,
            remaining=remaining,
            reset_epoch=_ceil_seconds(row["tat"]),  # the TAT is always ahead of the clock
            retry_after_seconds=retry_after,
        )


async def enforce(request: web.Request, limiter: RateLimiter, key: str, limit: int, period: int = 60) -> None:
    """Refuse with 429 ``rate_limited`` over the limit; otherwise the answer carries the headers."""
    decision = await limiter.check(key, limit, period)
    if not decision.allowed:
        raise ApiError(
            RATE_LIMITED,
            details={"retryAfterSeconds": decision.retry_after_seconds},
            headers=decision.headers(),
        )
    request[RESPONSE_HEADERS].update(decision.headers())
