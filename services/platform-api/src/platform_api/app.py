"""The composition root: settings in, a wired aiohttp application out. Tests use it as it is."""

from __future__ import annotations

import asyncio
import contextlib
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
from lf_messaging import BackgroundWork, Broker
from lf_pg import MigrationSet
from lf_service import BROKER, use_background_work
from lf_web import PG_POOL, WAKEUP, RateLimiter
from lf_web.sealing import MasterKeys
from platform_api.adapters.chainabit import ChainabitClient
from platform_api.adapters.execution_proxy import ExecutionProxy
from platform_api.application.catalogue import CatalogueUseCases
from platform_api.application.partners import TOKEN_PURPOSE, PartnerUseCases
from platform_api.application.run_events import RunEventsHub
from platform_api.application.runs import RunUseCases
from platform_api.http import catalogue, partners, run_events, runs
from platform_api.http.errors import CODES
from platform_api.http.keys import CATALOGUE, PARTNERS, RATE_LIMITER, RUN_EVENTS, RUNS
from platform_api.run_workers import RunNodeRelay, RunWorkers
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
RUN_WORKERS = web.AppKey("run_workers", RunWorkers)
DEADLINE_SWEEP_SECONDS = 5.0
"""How late past its deadline a run nobody is working on may end ``timed_out``."""


def create_app(settings: PlatformSettings, *, background: bool = True) -> web.Application:
    """``background=False`` leaves out the background work (the relay of run nodes to the work
    queue, the run workers)."""
    app = lf_web.create_app(settings, service=SERVICE, schema=SCHEMA, openapi_path=OPENAPI, refusals=CODES)
    app.add_routes(catalogue.routes)
    app.add_routes(runs.routes)
    app.cleanup_ctx.append(partial(_use_cases, settings=settings))
    app.add_routes(partners.routes)
    app.cleanup_ctx.append(partial(_partners, settings=settings))
    app.add_routes(run_events.routes)
    app.cleanup_ctx.append(partial(_run_events_hub, settings=settings))
    app.on_shutdown.append(_end_event_streams)
    if background:
        app.cleanup_ctx.append(partial(_use_broker, settings=settings))
        app.cleanup_ctx.append(use_background_work(settings, SCHEMA, partial(_background, settings=settings)))
        app.cleanup_ctx.append(partial(_use_run_workers, settings=settings))
    return app


async def _use_broker(app: web.Application, *, settings: PlatformSettings) -> AsyncIterator[None]:
    """The broker carries run nodes to the run workers. Unlike lf_service.use_broker it registers
    no /health probe: seed 001's /health is the database's alone (HealthDegraded has db only); a
    broker outage only delays runs (their nodes wait in the log until the relay publishes them)."""
    async with Broker(settings.amqp_url) as broker:
        app[BROKER] = broker
        yield


async def _use_run_workers(app: web.Application, *, settings: PlatformSettings) -> AsyncIterator[None]:
    proxy = ExecutionProxy(
        settings.execution_proxy_url,
        settings.platform_api_key or "",
        default_provider=settings.default_provider,
        sponsor_id=settings.sponsor_id,
    )
    workers = RunWorkers(
        app[BROKER],
        app[RUNS],
        proxy,
        prefetch=settings.run_worker_prefetch,
        node_timeout=settings.node_timeout_seconds,
        delta_interval=settings.node_delta_interval_ms / 1000,
        hub=app[RUN_EVENTS],
    )
    task = asyncio.create_task(workers.run(), name="run-workers")
    app[RUN_WORKERS] = workers
    yield
    await workers.stop(timeout=settings.shutdown_timeout_seconds / 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _use_cases(app: web.Application, *, settings: PlatformSettings) -> AsyncIterator[None]:
    app[CATALOGUE] = CatalogueUseCases(app[PG_POOL], appended=app[WAKEUP].appended)
    app[RUNS] = RunUseCases(
        app[PG_POOL],
        appended=app[WAKEUP].appended,
        cancel_grace=timedelta(seconds=settings.cancel_grace_seconds),
    )
    app[RATE_LIMITER] = RateLimiter(app[PG_POOL])
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
    """The relay of run nodes (``NodeQueued``) to the work queue, and the deadline sweep. (Run
    status is inline; the run workers consume the work queue themselves, outside any transaction:
    ``_use_run_workers``.)"""
    work.follow(RunNodeRelay(app[BROKER]))
    work.every(3600, app[RATE_LIMITER].prune)  # expired rate-limit keys are bookkeeping
    work.every(DEADLINE_SWEEP_SECONDS, app[RUNS].time_out_due_runs)
