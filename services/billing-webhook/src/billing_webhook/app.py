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
from billing_webhook.adapters.lemonsqueezy import LemonSqueezyClient
from billing_webhook.application.billing import Billing
from billing_webhook.application.processor import DeliveryProcessor
from billing_webhook.handlers import HANDLERS
from billing_webhook.http import internal, webhook
from billing_webhook.http.errors import CODES
from billing_webhook.http.keys import BILLING, BILLING_SETTINGS, LEMONSQUEEZY
from billing_webhook.integration_events import RELAYED_TYPES, to_message
from billing_webhook.settings import BillingSettings
from lf_contracts import openapi_spec
from lf_messaging import BackgroundWork, Relay
from lf_pg import MigrationSet
from lf_service import BROKER, use_background_work, use_broker
from lf_web import PG_POOL, WAKEUP

SERVICE = "billing-webhook"
SCHEMA = "billing"
MIGRATIONS: list[MigrationSet] = [
    lf_eventstore.MIGRATIONS,
    lf_projections.MIGRATIONS,
    lf_messaging.MIGRATIONS,
    lf_web.MIGRATIONS,
    MigrationSet("billing", "billing_webhook"),
]
OPENAPI = openapi_spec(SERVICE)
# Follower names key their checkpoints and leases within the schema: what the follower does, no
# service prefix (migrations/0003_follower_names.sql).
RELAY = "relay"
# How often buyers' personal data past its retention is deleted (a bounded batch each time).
PERSONAL_DATA_SWEEP_SECONDS = 600


def create_app(settings: BillingSettings, *, background: bool = True) -> web.Application:
    """``background=False`` leaves out the delivery processor, the relay and the expiry loop."""
    app = lf_web.create_app(settings, service=SERVICE, schema=SCHEMA, openapi_path=OPENAPI, refusals=CODES)
    app.add_routes(webhook.routes)
    app.add_routes(internal.routes)
    app[BILLING_SETTINGS] = settings
    app.cleanup_ctx.append(partial(_use_cases, settings=settings))
    # Connects in the background: deliveries are recorded and answered while RabbitMQ is away.
    app.cleanup_ctx.append(use_broker(settings.amqp_url))
    if background:
        app.cleanup_ctx.append(use_background_work(settings, SCHEMA, partial(_background, settings=settings)))
    return app


async def _use_cases(app: web.Application, *, settings: BillingSettings) -> AsyncIterator[None]:
    app[BILLING] = Billing.create(app[PG_POOL], appended=app[WAKEUP].appended)
    async with aiohttp.ClientSession() as http:
        app[LEMONSQUEEZY] = LemonSqueezyClient(
            http,
            api_url=settings.lemonsqueezy_api_url,
            api_key=settings.lemonsqueezy_api_key,
            store_id=settings.lemonsqueezy_store_id,
            timeout_seconds=settings.lemonsqueezy_timeout_seconds,
        )
        yield


def _background(app: web.Application, work: BackgroundWork, *, settings: BillingSettings) -> None:
    billing = app[BILLING]
    # Small batches: the checkpoint moves once the batch's slowest partition is done.
    processor = DeliveryProcessor(billing, handlers=HANDLERS, concurrency=settings.delivery_concurrency)
    work.follow(processor, batch_size=100)
    work.follow(Relay(app[BROKER], to_message=to_message, types=RELAYED_TYPES, name=RELAY))
    work.every(settings.checkout_expiry_interval_seconds, billing.checkouts.expire_due)
    retention = timedelta(days=settings.delivery_personal_data_retention_days)
    work.every(PERSONAL_DATA_SWEEP_SECONDS, partial(billing.deliveries.forget_personal_data, retention))
