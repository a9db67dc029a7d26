"""Telling an outage from a failure, and waiting an outage out.

A message whose handler fails because of the message (a bug, a poison payload, its own statement
timeout) should be retried a few times and then dead-lettered. A message that fails because the
database is away must not: it would be dead-lettered for nothing and its effect (a purchase, a
settlement) lost. ``is_outage`` draws the line; ``DatabaseGate`` is where every delivery waits,
with capped backoff, until the database answers again.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# SQLSTATE classes that say "the server, not this statement": 08 connection exception, 53
# insufficient resources (too many connections, out of memory, disk full), 57P operator
# intervention (admin or crash shutdown, cannot connect now, database dropped). 57014
# (query_canceled, a statement timeout) is deliberately not among them: it belongs to the message.
OUTAGE_SQLSTATE_PREFIXES = ("08", "53", "57P")


class DatabaseUnavailable(Exception):
    """No connection could be had from the pool (refused, timed out, pool exhausted)."""


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) says the database is unreachable or unable,
    rather than that this one message cannot be handled."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_outage_itself(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailable | OSError):  # OSError: refused, reset, unreachable
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate.startswith(OUTAGE_SQLSTATE_PREFIXES)
    # The connection went away under a query, or the pool is closing under us.
    message = str(exc)
    return isinstance(exc, asyncpg.InterfaceError) and ("closed" in message or "closing" in message)


class DatabaseGate:
    """Open while the database answers. ``close(reason)`` starts probing it (``SELECT 1`` on the
    pool) with capped exponential backoff; the gate opens again on the first answer."""

    def __init__(
        self, pool: asyncpg.Pool, *, name: str, first_backoff: float = 0.1, max_backoff: float = 5.0
    ) -> None:
        self.pool, self.name = pool, name
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self._open = asyncio.Event()
        self._open.set()
        self._probing: asyncio.Task[None] | None = None
        self.closed_since: float | None = None
        self.reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def close(self, reason: str) -> None:
        if not self._open.is_set():
            return
        self._open.clear()
        self.closed_since, self.reason = time.monotonic(), reason
        log.warning("database.unavailable.waiting", consumer=self.name, reason=reason)
        self._probing = asyncio.create_task(self._probe(), name=f"{self.name}-database-probe")

    async def wait_open(self) -> None:
        await self._open.wait()

    def describe(self) -> str | None:
        """None while open, else what we wait for and since when (for /health)."""
        if self._open.is_set() or self.closed_since is None:
            return None
        waited = time.monotonic() - self.closed_since
        return f"waiting for the database for {waited:.0f}s ({self.reason})"

    async def _probe(self) -> None:
        delay = self.first_backoff
        while True:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(max(delay, 1.0)):
                    await self.pool.fetchval("SELECT 1")
            except Exception as exc:  # noqa: BLE001 - whatever it is, the database is not back yet
                log.debug("database.probe_failed", consumer=self.name, error=repr(exc))
                delay = min(delay * 2, self.max_backoff)
                continue
            log.info(
                "database.available.resuming",
                consumer=self.name,
                waited_s=round(time.monotonic() - (self.closed_since or time.monotonic()), 1),
            )
            self.closed_since = self.reason = None
            self._open.set()
            return

    async def stop(self) -> None:
        probing, self._probing = self._probing, None
        if probing is not None:
            probing.cancel()
            # gather, not suppress(CancelledError): a cancellation of the caller must go on.
            await asyncio.gather(probing, return_exceptions=True)
