"""The composition root: settings in, a wired aiohttp application out. Tests use it as it is."""

from __future__ import annotations

import os
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
from lf_messaging import BackgroundWork
from lf_pg import MigrationSet
from lf_service import use_background_work
from lf_service.execution_proxy import ExecutionProxyClient
from lf_web import PG_POOL, WAKEUP, RateLimiter
from lightning_jobs.adapters.agent import ExecutionProxyAgent
from lightning_jobs.adapters.bolt11 import Bolt11RefundInvoices
from lightning_jobs.adapters.gemini import GeminiChat, GeminiImages
from lightning_jobs.adapters.lnbits import LNbitsBackend
from lightning_jobs.adapters.macaroons import L402Macaroons, SessionMacaroons
from lightning_jobs.adapters.price_oracle import PriceOracle
from lightning_jobs.adapters.stub import StubBackend, StubRefundChecker
from lightning_jobs.application.conversations import Conversations
from lightning_jobs.application.flow import JobFlow
from lightning_jobs.application.jobs import JobUseCases
from lightning_jobs.application.l402 import L402Flow, L402UseCases
from lightning_jobs.application.notifications import PaymentNotifications
from lightning_jobs.application.ports import InvoiceBackend, RefundInvoiceChecker
from lightning_jobs.application.pricing import Pricing, cost_based_pricing
from lightning_jobs.application.queries import JobQueries
from lightning_jobs.application.sessions import SessionFlow, SessionQueries, SessionUseCases
from lightning_jobs.domain.pricing import PricingConfig
from lightning_jobs.http import demo, dev, gemini, health, jobs, l402, lnbits, sessions
from lightning_jobs.http.client_ip import trusted_networks
from lightning_jobs.http.errors import CODES, error_body
from lightning_jobs.http.keys import (
    AGENT,
    CONVERSATIONS,
    DEMO,
    FLOW,
    GEMINI,
    GEMINI_LIMIT,
    L402,
    NOTIFICATIONS,
    SESSION_FLOW,
    STUB,
    Gemini,
    PerIpLimit,
)
from lightning_jobs.settings import LightningSettings

SERVICE = "lightning-jobs"
SCHEMA = "lightning"
MIGRATIONS: list[MigrationSet] = [
    lf_eventstore.MIGRATIONS,
    lf_projections.MIGRATIONS,
    lf_messaging.MIGRATIONS,
    lf_web.MIGRATIONS,
    # The ledger is append-only for the runtime role too: a posting is never changed, only added.
    MigrationSet("lightning", "lightning_jobs", privileges=(("ledger_postings", "SELECT, INSERT"),)),
]
OPENAPI = openapi_spec(SERVICE)


def create_app(
    settings: LightningSettings, *, background: bool = True, pricing: Pricing | None = None
) -> web.Application:
    """``background=False`` leaves out the invoice watcher. ``pricing``: how jobs are priced; without
    it, seed 002's cost-based pricing at the BTC price oracle of the settings."""
    app = lf_web.create_app(
        settings, service=SERVICE, schema=SCHEMA, openapi_path=OPENAPI, refusals=CODES, error_shape=error_body
    )
    app.add_routes(health.routes)
    app.add_routes(jobs.routes)
    app.add_routes(sessions.routes)
    app.add_routes(demo.routes)
    app.add_routes(gemini.routes)
    app.add_routes(lnbits.routes)
    app.add_routes(l402.routes)
    if settings.development and settings.lightning_backend == "stub":
        app.add_routes(dev.routes)  # production has no such path at all
    app.cleanup_ctx.append(partial(_job_flow, settings=settings, pricing=pricing))
    if background:
        app.cleanup_ctx.append(use_background_work(settings, SCHEMA, partial(_background, settings=settings)))
    return app


async def _job_flow(
    app: web.Application, *, settings: LightningSettings, pricing: Pricing | None
) -> AsyncIterator[None]:
    pool = app[PG_POOL]
    http = aiohttp.ClientSession()  # the outside HTTP systems': the BTC price oracle, LNbits
    if pricing is None:
        oracle = PriceOracle(
            http,
            url=settings.btc_price_url,
            fallback_usd=settings.btc_price_usd_fallback,
            cache_seconds=settings.btc_price_cache_seconds,
            timeout_seconds=settings.btc_price_timeout_seconds,
        )
        pricing = cost_based_pricing(
            settings.eval_fee_sats,
            PricingConfig.from_env(os.environ),
            btc_price=oracle.btc_usd,
        )
    backend: InvoiceBackend
    refund_checker: RefundInvoiceChecker
    if settings.lightning_backend == "lnbits":
        assert settings.lnbits_url and settings.lnbits_invoice_key and settings.lnbits_admin_key
        backend = LNbitsBackend(
            http,
            url=settings.lnbits_url,
            invoice_key=settings.lnbits_invoice_key,
            admin_key=settings.lnbits_admin_key,
            timeout_seconds=settings.lnbits_timeout_seconds,
            pay_timeout_seconds=settings.lnbits_pay_timeout_seconds,
            webhook_url=settings.lnbits_webhook_url,
        )
        refund_checker = Bolt11RefundInvoices(settings.lightning_network)
    else:
        app[STUB] = backend = StubBackend(pool)
        refund_checker = StubRefundChecker()
    agent = ExecutionProxyAgent(
        ExecutionProxyClient(settings.execution_proxy_url, settings.platform_api_key or ""),
        eval_model=settings.eval_model,
        work_model=settings.work_model,
        default_provider=settings.default_provider,
        timeout_seconds=settings.ai_timeout_seconds,
    )
    app[AGENT] = agent
    limiter, trusted = RateLimiter(pool), trusted_networks(settings.trusted_proxies)
    app[DEMO] = PerIpLimit(limiter, trusted, limit=settings.demo_limit_per_hour, period_seconds=3600)
    app[GEMINI_LIMIT] = PerIpLimit(
        limiter, trusted, limit=settings.gemini_limit_per_hour, period_seconds=3600
    )
    app[CONVERSATIONS] = Conversations(pool)
    app[GEMINI] = Gemini(
        GeminiChat(agent.client, timeout_seconds=settings.ai_timeout_seconds),  # the agent's client
        model=settings.gemini_model,
        images=GeminiImages(  # on the agent's client (closed with it)
            agent.client,
            model=settings.gemini_image_model,
            timeout_seconds=settings.ai_timeout_seconds,
        ),
    )
    jobs_ = JobUseCases(
        pool, lease=timedelta(seconds=settings.step_lease_seconds), appended=app[WAKEUP].appended
    )
    app[FLOW] = flow = JobFlow(
        jobs_,
        JobQueries(pool),
        backend=backend,
        agent=agent,
        pricing=pricing,
        refund_checker=refund_checker,
        refund_recheck_seconds=settings.refund_recheck_seconds,
    )
    assert settings.macaroon_root_key  # development has a dev key; production refuses to start without
    app[SESSION_FLOW] = session_flow = SessionFlow(
        SessionUseCases(pool, appended=app[WAKEUP].appended),
        SessionQueries(pool),
        backend=backend,
        agent=agent,
        pricing=pricing,
        macaroons=SessionMacaroons(
            settings.macaroon_root_key, timedelta(seconds=settings.macaroon_ttl_seconds)
        ),
        idle=timedelta(seconds=settings.session_idle_seconds),
        refund_checker=refund_checker,
        refund_recheck_seconds=settings.refund_recheck_seconds,
        lease=timedelta(seconds=settings.step_lease_seconds),
    )
    app[NOTIFICATIONS] = PaymentNotifications(flow, session_flow)
    app[L402] = l402_flow = L402Flow(
        L402UseCases(pool, appended=app[WAKEUP].appended),
        backend=backend,
        agent=agent,
        pricing=pricing,
        macaroons=L402Macaroons(settings.macaroon_root_key, timedelta(seconds=settings.macaroon_ttl_seconds)),
        lease=timedelta(seconds=settings.step_lease_seconds),
    )
    yield
    await l402_flow.close()
    await session_flow.close()
    await flow.close()
    await agent.close()
    await http.close()


def _background(app: web.Application, work: BackgroundWork, *, settings: LightningSettings) -> None:
    """The invoice watcher: jobs move on with nobody polling. (Job status and the ledger are inline;
    nothing is published or consumed yet.)"""
    work.every(settings.watch_interval_seconds, app[FLOW].watch)
    work.every(settings.watch_interval_seconds, app[SESSION_FLOW].watch)
    work.every(3600, app[DEMO].limiter.prune)  # expired rate-limit keys are bookkeeping
