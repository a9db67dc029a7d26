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
from lf_contracts import openapi_spec
from lf_messaging import BackgroundWork
from lf_pg import MigrationSet
from lf_service import use_background_work
from lf_web import PG_POOL, WAKEUP
from lf_web.sealing import MasterKeys
from platform_api.adapters.chainabit import ChainabitClient
from platform_api.application.catalogue import CatalogueUseCases
from platform_api.application.partners import TOKEN_PURPOSE, PartnerUseCases
from platform_api.application.run_events import RunEventsHub
from platform_api.http import catalogue, partners, run_events
from platform_api.http.errors import CODES
from platform_api.http.keys import CATALOGUE, PARTNERS, RUN_EVENTS
from platform_api.settings import PlatformSettings

SERVICE = "platform-api"
SCHEMA = "platform"
MIGRATIONS: list[MigrationSet] = [
    lf_eventstore.MIGRATIONS,
    lf_projections.MIGRATIONS,
    lf_messaging.MIGRATIONS,
    lf_web.MIGRATIONS,
    MigrationSet("platform", "platform_api"),
]
OPENAPI = openapi_spec(SERVICE)


def create_app(settings: PlatformSettings, *, background: bool = True) -> web.Application:
    """``background=False`` leaves out the background work (none yet: the run workers, the run
    status follower and the relay come with runs)."""
    app = lf_web.create_app(settings, service=SERVICE, schema=SCHEMA, openapi_path=OPENAPI, refusals=CODES)
    app.add_routes(catalogue.routes)
    app.cleanup_ctx.append(_use_cases)
    app.add_routes(partners.routes)
    app.cleanup_ctx.append(partial(_partners, settings=settings))
    app.add_routes(run_events.routes)
    app.cleanup_ctx.append(partial(_run_events_hub, settings=settings))
    app.on_shutdown.append(_end_event_streams)
    # No broker yet: nothing is published or consumed before runs, and seed 001's /health is the
    # database's alone (HealthDegraded has db: false). Runs add use_broker(settings.amqp_url) here,
    # and the document's Health schemas then gain `broker` as wallet-api's have.
    if background:
        app.cleanup_ctx.append(use_background_work(settings, SCHEMA, partial(_background, settings=settings)))
    return app


async def _use_cases(app: web.Application) -> AsyncIterator[None]:
    app[CATALOGUE] = CatalogueUseCases(app[PG_POOL], appended=app[WAKEUP].appended)
    yield


async def _partners(app: web.Application, *, settings: PlatformSettings) -> AsyncIterator[None]:
    """The partner integrations by name (``/v1/partners/{partnerName}``), each an adapter."""
    # No key: partners are switched off (production without CHAINABIT_API_URL; with it, the start is
    # refused without a key), and their routes answer partner.unavailable.
    token_keys = None
    if settings.partner_token_master_key is not None:
        token_keys = MasterKeys.from_settings(
            settings.partner_token_master_key,
            settings.partner_token_previous_master_keys,
            purpose=TOKEN_PURPOSE,
            setting="PARTNER_TOKEN_MASTER_KEY",
        )
    async with aiohttp.ClientSession() as http:
        chainabit = ChainabitClient(
            http,
            api_url=settings.chainabit_api_url,
            api_key=settings.chainabit_partner_api_key,
            timeout_seconds=settings.chainabit_timeout_seconds,
        )
        app[PARTNERS] = PartnerUseCases(
            app[PG_POOL],
            {chainabit.name: chainabit},
            token_keys,
            starter_credits=settings.chainabit_starter_credits,
            token_scopes=settings.token_scopes,
            appended=app[WAKEUP].appended,
        )
        yield


async def _run_events_hub(app: web.Application, *, settings: PlatformSettings) -> AsyncIterator[None]:
    """The one listener that pushes run events to this process's SSE clients (it serves requests,
    so it runs with or without the background work)."""
    hub = RunEventsHub(
        app[PG_POOL],
        app[WAKEUP],
        max_clients=settings.sse_max_connections,
        buffer_events=settings.sse_client_buffer_events,
        poll_seconds=settings.run_events_poll_seconds,
    )
    await hub.start()
    app[RUN_EVENTS] = hub
    yield
    await hub.close()


async def _end_event_streams(app: web.Application) -> None:
    """A stopping server ends its event streams at once (their clients resume on another replica)
    rather than holding the shutdown for as long as they would stay."""
    if RUN_EVENTS in app:
        app[RUN_EVENTS].end_all()


def _background(app: web.Application, work: BackgroundWork, *, settings: PlatformSettings) -> None:
    """Nothing follows the log nor consumes yet. Runs add here: ``work.follow(RUN_STATUS)``, the
    relay of ``platform.*`` events, and the run workers' consumer of their work queue."""
