"""Rate limits shared by all replicas of a service, in PostgreSQL, one row per key.

A limit of N per period is exact: at most N requests are admitted in any window of that period,
wherever the window starts. Each key keeps the times of its admissions still inside the period (a
sliding log of at most N timestamps) and a request passes while fewer than N are. The decision is
made inside the database by ``rate_limit_admit`` (migration 0002) in whole microseconds, on the
database's clock; Python only turns the answer into headers, still in integers. Expired rows are
bookkeeping: ``prune`` deletes them (a periodic job of the service).

Neither waits for the WAL flush (``lf_pg.WITHOUT_FLUSH``): a crash of the server can only forget the
last fraction of a second of admissions or bring pruned rows back, which changes no money and at
worst lets a key a few more requests, so a rate-limited request does not pay an fsync. The statements
say so themselves, not ``rate_limit_admit``: the function may not decide for a caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from lf_contracts.errors import RATE_LIMITED, ApiError
from lf_pg import WITHOUT_FLUSH, MigrationSet
from lf_web.request_context import RESPONSE_HEADERS

MIGRATIONS = MigrationSet("web", "lf_web")

_US = 1_000_000
# One statement, one transaction of its own (autocommit), which therefore need not wait for the flush.
ADMIT = f"SELECT a.* FROM rate_limit_admit($1, $2, $3) AS a, {WITHOUT_FLUSH} AS without_flush"
PRUNE = f"SELECT prune_rate_limits(), {WITHOUT_FLUSH}"


def _ceil_seconds(microseconds: int) -> int:
    return -(-microseconds // _US)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    """When the key's whole allowance is available again (Unix seconds)."""
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
        if limit < 1 or period_seconds < 1:
            raise ValueError("limit and period must be positive")
        row = await self._pool.fetchrow(ADMIT, key, limit, period_seconds * _US)
        wait_us = row["retry_us"] - row["now_us"]
        return RateDecision(
            allowed=row["allowed"],
            limit=limit,
            remaining=row["remaining"],
            reset_epoch=_ceil_seconds(row["reset_us"]),
            retry_after_seconds=0 if row["allowed"] else max(1, _ceil_seconds(wait_us)),
        )

    async def prune(self) -> int:
        """Delete the keys with no admission left in their period; returns how many (they would
        behave exactly as absent ones, so this changes no decision)."""
        deleted = 0
        while batch := await self._pool.fetchval(PRUNE):
            deleted += batch
        return deleted


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
