"""Service-to-service routes under /internal (X-Platform-Api-Key; never routed by the gateway):
checkouts for wallet-api's POST /wallet/checkout, and the credit-pack catalogue."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

import structlog
from aiohttp import web
from pydantic import Field

from billing_webhook.application import queries
from billing_webhook.domain.commands import OpenCheckout
from billing_webhook.domain.credit_pack import PackTerms
from billing_webhook.domain.errors import BillingError
from billing_webhook.http.keys import BILLING, BILLING_SETTINGS, LEMONSQUEEZY
from lf_contracts.errors import BILLING_SESSION_FAILED, ApiError
from lf_web import PG_POOL, RequestBody, event_metadata, ok, parse_body, path_matching

routes = web.RouteTableDef()
ACTOR = "internal"
VARIANT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

log = structlog.get_logger(__name__)


class CheckoutRequest(RequestBody):
    lenser_id: UUID
    variant_id: str = Field(min_length=1, max_length=64)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class PackRequest(RequestBody):
    product_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0, le=10**12, strict=True)
    credits_granted: int = Field(gt=0, le=10**9, strict=True)
    test_mode: bool = False
    active: bool = True


@routes.post("/internal/checkouts")
async def create_checkout(request: web.Request) -> web.Response:
    body = await parse_body(request, CheckoutRequest)
    settings = request.app[BILLING_SETTINGS]
    try:
        session_id, checkout = await request.app[BILLING].checkouts.open(
            OpenCheckout(body.lenser_id, body.variant_id, body.email),
            lemonsqueezy=request.app[LEMONSQUEEZY],
            ttl=timedelta(seconds=settings.checkout_session_ttl_seconds),
            redirect_url=settings.checkout_redirect_url,
            metadata=event_metadata(request, ACTOR),
        )
    except (ApiError, BillingError):
        raise
    except Exception:
        log.exception("checkout.failed", variant_id=body.variant_id)
        raise ApiError(BILLING_SESSION_FAILED) from None
    return ok(
        request,
        {"checkoutUrl": checkout.url, "checkoutId": checkout.checkout_id, "sessionId": session_id},
        status=201,
    )


@routes.get("/internal/credit-packs")
async def list_credit_packs(request: web.Request) -> web.Response:
    packs = await queries.credit_packs(request.app[PG_POOL])
    return ok(request, {"packs": [pack.view() for pack in packs]})


@routes.put("/internal/credit-packs/{variant_id}")
async def put_credit_pack(request: web.Request) -> web.Response:
    variant_id = path_matching(request, "variant_id", VARIANT_ID, "1 to 64 of A-Z a-z 0-9 . _ -")
    body = await parse_body(request, PackRequest)
    terms = PackTerms(**body.model_dump())
    changed = await request.app[BILLING].packs.put(variant_id, terms, metadata=event_metadata(request, ACTOR))
    pack = await queries.credit_pack(request.app[PG_POOL], variant_id)
    assert pack is not None
    return ok(request, {**pack.view(), "changed": changed})
