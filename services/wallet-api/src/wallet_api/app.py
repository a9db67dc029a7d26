"""The composition root: settings in, a wired aiohttp application out. Tests use it as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

import aiohttp
from aiohttp import web

import lf_eventstore
import lf_messaging
import lf_projections
import lf_web
from lf_contracts import openapi_spec
from lf_messaging import BackgroundWork, Consumer, Relay
from lf_pg import MigrationSet
from lf_service import BROKER, use_background_work, use_broker
from lf_web import PG_POOL, WAKEUP, RateLimiter
from wallet_api.adapters.billing import BillingClient
from wallet_api.application.use_cases import Wallets
from wallet_api.handlers import HANDLERS
from wallet_api.http import internal, public
from wallet_api.http.errors import CODES
from wallet_api.http.keys import BILLING, RATE_LIMITER, RESERVATION_TTL, WALLETS
from wallet_api.integration_events import RELAYED_TYPES, to_message
from wallet_api.projections import LEDGER
from wallet_api.settings import WalletSettings

SERVICE = "wallet-api"
SCHEMA = "wallet"
MIGRATIONS: list[MigrationSet] = [
    lf_eventstore.MIGRATIONS,
    lf_projections.MIGRATIONS,
    lf_messaging.MIGRATIONS,
    lf_web.MIGRATIONS,
    MigrationSet("wallet", "wallet_api"),
]
OPENAPI = openapi_spec(SERVICE)


def create_app(settings: WalletSettings, *, background: bool = True) -> web.Application:
    """``background=False`` leaves out the followers, consumer and expiry loop (benchmarks, some tests)."""
    app = lf_web.create_app(settings, service=SERVICE, schema=SCHEMA, openapi_path=OPENAPI, refusals=CODES)
    app.add_routes(public.routes)
    app.add_routes(internal.routes)
    app[RESERVATION_TTL] = timedelta(seconds=settings.reservation_ttl_seconds)
    app.cleanup_ctx.append(partial(_use_cases, settings=settings))
    # Connects in the background: the HTTP API serves while RabbitMQ is away.
    app.cleanup_ctx.append(use_broker(settings.amqp_url))
    if background:
        app.cleanup_ctx.append(use_background_work(settings, SCHEMA, partial(_background, settings=settings)))
    return app


async def _use_cases(app: web.Application, *, settings: WalletSettings) -> AsyncIterator[None]:
    pool = app[PG_POOL]
    app[WALLETS] = Wallets(
        pool,
        accept_test_mode_payments=bool(settings.accept_test_mode_payments),
        reservation_max_lifetime=timedelta(seconds=settings.reservation_max_lifetime_seconds),
        appended=app[WAKEUP].appended,
    )
    app[RATE_LIMITER] = RateLimiter(pool)
    async with aiohttp.ClientSession() as http:
        app[BILLING] = BillingClient(
            http, settings.billing_webhook_url, settings.platform_api_key, settings.billing_timeout_seconds
        )
        yield


def _background(app: web.Application, work: BackgroundWork, *, settings: WalletSettings) -> None:
    pool, broker, wallets = app[PG_POOL], app[BROKER], app[WALLETS]
    work.follow(LEDGER)
    work.follow(Relay(broker, to_message=to_message, types=RELAYED_TYPES))
    handlers = {model: partial(handler, wallets=wallets) for model, handler in HANDLERS.items()}
    # Development trusts messages from a broker user of no context (make dev and tests use guest).
    consumer = Consumer(
        SERVICE, broker, pool, handlers, accept_unidentified=settings.env_mode == "development"
    )
    work.consume(consumer)
    lf_web.add_health_check(app, "consumer", consumer.health)
    work.every(settings.expiry_interval_seconds, wallets.expire_due)
    work.every(3600, app[RATE_LIMITER].prune)  # expired rate-limit keys are bookkeeping
