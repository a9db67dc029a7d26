"""``GET /health`` in seed 001's shape: 200 ``ok`` or 503 ``degraded`` with a reason.

Not enveloped: load balancers and the seed's clients read it as is. The database is probed with
``SELECT 1`` on the service's own pool (so an exhausted pool shows too) within 1500 ms. The broker
probe is whatever callable the service registered under ``BROKER_CHECK``, so this kit knows nothing
of messaging; without one, ``broker`` is left out. Background work that can stall without either
probe noticing (a consumer waiting out a database outage, a consumer whose task died) registers a
check of its own with ``add_health_check``: it returns ``None`` when fine, else the reason.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from lf_web.keys import BROKER_CHECK, PG_POOL, SETTINGS, STARTED_AT, BrokerCheck

TIMEOUT_SECONDS = 1.5

HealthCheck = Callable[[], str | None]
"""None when healthy, else the reason (e.g. ``Consumer.health``). Must not block."""
HEALTH_CHECKS = web.AppKey("health_checks", dict[str, HealthCheck])


def add_health_check(app: web.Application, name: str, check: HealthCheck) -> None:
    """Make ``/health`` report ``name`` (true/false) and degrade with ``check``'s reason."""
    checks = app.get(HEALTH_CHECKS)
    if checks is None:
        app[HEALTH_CHECKS] = checks = {}
    checks[name] = check


log = structlog.get_logger("lf_web.health")


async def _probe(name: str, check: Callable[[], Awaitable[bool]]) -> str | None:
    """None when healthy, else the reason."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            healthy = await check()
    except TimeoutError:
        return f"{name}: timeout"
    except Exception as exc:
        log.warning("health.probe_failed", probe=name, exc_info=True)
        return f"{name}: {type(exc).__name__}"
    return None if healthy else f"{name}: down"


def _database(app: web.Application) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await app[PG_POOL].fetchval("SELECT 1") == 1

    return check


async def _registered(name: str, check: HealthCheck) -> str | None:
    try:
        reason = check()
    except Exception as exc:
        log.warning("health.check_failed", check=name, exc_info=True)
        reason = type(exc).__name__
    return f"{name}: {reason}" if reason else None


def _broker(probe: BrokerCheck) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        result = probe()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    return check


async def health_handler(request: web.Request) -> web.Response:
    app = request.app
    probes = {"db": _probe("database", _database(app))}
    if BROKER_CHECK in app:
        probes["broker"] = _probe("broker", _broker(app[BROKER_CHECK]))
    for name, check in app.get(HEALTH_CHECKS, {}).items():
        probes[name] = _registered(name, check)
    reasons = dict(zip(probes, await asyncio.gather(*probes.values()), strict=True))
    failures = [reason for reason in reasons.values() if reason]
    body: dict[str, Any] = {
        "status": "degraded" if failures else "ok",
        **{name: reason is None for name, reason in reasons.items()},
        "uptime_s": int(time.monotonic() - app[STARTED_AT]),
        "version": app[SETTINGS].version,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if failures:
        body["reason"] = "; ".join(failures)
    return web.json_response(body, status=503 if failures else 200)
