"""The composition root: settings in, a wired aiohttp application out. Tests use it as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import aiohttp
from aiohttp import web

import lf_eventstore
import lf_messaging
import lf_projections
import lf_web
from execution_proxy.adapters.envelope import MasterKeys
from execution_proxy.adapters.providers import build_providers
from execution_proxy.adapters.wallet import WalletClient
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.application.detached import DetachedExecutions
from execution_proxy.application.executions import Executions, drain_recordings
from execution_proxy.application.keys import ByokKeys
from execution_proxy.http import byok_keys, execute, images, internal, openai_compat
from execution_proxy.http.errors import CODES
from execution_proxy.http.keys import BYOK_KEYS, CATALOGUE, DETACHED, EXECUTIONS, RATE_LIMITER
from execution_proxy.integration_events import RELAYED_TYPES, to_message
from execution_proxy.settings import ExecutionSettings
from lf_contracts import openapi_spec
from lf_messaging import BackgroundWork, Relay
from lf_pg import MigrationSet
from lf_service import BROKER, use_background_work, use_broker
from lf_web import PG_POOL, WAKEUP, RateLimiter

SERVICE = "execution-proxy"
SCHEMA = "execution"
MIGRATIONS: list[MigrationSet] = [
    lf_eventstore.MIGRATIONS,
    lf_projections.MIGRATIONS,
    lf_messaging.MIGRATIONS,
    lf_web.MIGRATIONS,
    MigrationSet("execution", "execution_proxy"),
]
OPENAPI = openapi_spec(SERVICE)


def create_app(settings: ExecutionSettings, *, background: bool = True) -> web.Application:
    """``background=False`` leaves out the relay and the periodic jobs (benchmarks, some tests)."""
    app = lf_web.create_app(settings, service=SERVICE, schema=SCHEMA, openapi_path=OPENAPI, refusals=CODES)
    app.add_routes(execute.routes)
    app.add_routes(byok_keys.routes)
    app.add_routes(internal.routes)
    app.add_routes(openai_compat.routes)
    app.add_routes(images.routes)
    app.cleanup_ctx.append(partial(_use_cases, settings=settings))
    # Connects in the background: executions are recorded while RabbitMQ is away, relayed later.
    app.cleanup_ctx.append(use_broker(settings.amqp_url))
    if background:
        app.cleanup_ctx.append(use_background_work(settings, SCHEMA, _background))
    return app


async def _use_cases(app: web.Application, *, settings: ExecutionSettings) -> AsyncIterator[None]:
    pool, appended = app[PG_POOL], app[WAKEUP].appended  # commands wake the log's readers
    catalogue = CatalogueAdmin(pool, credits_per_usd=settings.credits_per_usd, appended=appended)
    app[CATALOGUE] = catalogue
    app[RATE_LIMITER] = RateLimiter(pool)
    app[BYOK_KEYS] = keys = ByokKeys(
        pool, master_keys(settings), cache_seconds=settings.byok_key_cache_seconds, appended=appended
    )
    # One connection pool for every provider and the wallet: keep-alive saves a handshake per call.
    async with aiohttp.ClientSession() as http:
        app[EXECUTIONS] = Executions(
            pool,
            catalogue=catalogue,
            providers=build_providers(settings, http),
            wallet=WalletClient(
                http,
                settings.wallet_api_url,
                settings.platform_api_key or "",
                settings.wallet_timeout_seconds,
            ),
            keys=keys,
            credits_per_usd=settings.credits_per_usd,
            reservation_ttl_seconds=settings.reservation_ttl_seconds,
            appended=appended,
        )
        app[DETACHED] = detached = DetachedExecutions(
            app[EXECUTIONS],
            app[WAKEUP],
            check_seconds=settings.cancel_check_seconds,
            wait_seconds=settings.cancel_wait_seconds,
            heartbeat_seconds=settings.execution_heartbeat_seconds,
        )
        yield
        # Detached executions run to their end and are recorded (half the shutdown timeout, then cut
        # short and charged for what they produced: within the process's exit deadline).
        await detached.drain(settings.shutdown_timeout_seconds / 2)
        await drain_recordings()  # streams settling after their handler was cancelled
        await app[EXECUTIONS].afterwards.drain()  # records that follow their answers, before the pool goes


def master_keys(settings: ExecutionSettings) -> MasterKeys:
    """The BYOK master keys (settings validated them: a bad one refused the start)."""
    return MasterKeys.from_settings(settings.byok_master_key, settings.byok_previous_master_keys)


def _background(app: web.Application, work: BackgroundWork) -> None:
    work.follow(Relay(app[BROKER], to_message=to_message, types=RELAYED_TYPES))
    work.every(3600, app[RATE_LIMITER].prune)  # expired rate-limit keys are bookkeeping
    work.every(3600, app[EXECUTIONS].prune_outputs)
