"""What lensers call through the gateway, with their Supabase JWT."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from lf_web import (
    PG_POOL,
    REQUEST_ID,
    RequestBody,
    enforce,
    ok,
    page_meta,
    parse_body,
    parse_query,
    require_user,
)
from wallet_api.application import queries
from wallet_api.http.keys import BILLING, RATE_LIMITER

routes = web.RouteTableDef()

# Per lenser per minute (REFERENCE: documented limits).
BALANCE_PER_MINUTE = 200
TRANSACTIONS_PER_MINUTE = 100
CHECKOUTS_PER_MINUTE = 20


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class CheckoutRequest(RequestBody):
    variant_id: str = Field(min_length=1, max_length=64)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


@routes.get("/wallet/balance")
async def balance(request: web.Request) -> web.Response:
    lenser_id = await require_user(request)
    await enforce(request, request.app[RATE_LIMITER], f"wallet.balance:{lenser_id}", BALANCE_PER_MINUTE)
    return ok(request, await queries.balance(request.app[PG_POOL], lenser_id))


@routes.get("/wallet/transactions")
async def transactions(request: web.Request) -> web.Response:
    lenser_id = await require_user(request)
    page = parse_query(request, Page)
    await enforce(
        request, request.app[RATE_LIMITER], f"wallet.transactions:{lenser_id}", TRANSACTIONS_PER_MINUTE
    )
    rows, total = await queries.transactions(
        request.app[PG_POOL], lenser_id, limit=page.limit, offset=page.offset
    )
    return ok(request, rows, meta=page_meta(page.limit, page.offset, total))


@routes.get("/wallet/pricing")
async def pricing(request: web.Request) -> web.Response:
    await require_user(request)
    return ok(request, {"models": await queries.pricing(request.app[PG_POOL])})


@routes.get("/wallet/products")
async def products(request: web.Request) -> web.Response:
    await require_user(request)
    return ok(request, {"products": await queries.products(request.app[PG_POOL])})


@routes.post("/wallet/checkout")
async def checkout(request: web.Request) -> web.Response:
    lenser_id = await require_user(request)
    body = await parse_body(request, CheckoutRequest)
    await enforce(request, request.app[RATE_LIMITER], f"wallet.checkout:{lenser_id}", CHECKOUTS_PER_MINUTE)
    # Nothing is written here: billing-webhook owns checkout sessions, so a failure there leaves
    # nothing half-done on this side.
    session = await request.app[BILLING].create_checkout(
        lenser_id, body.variant_id, body.email, request_id=request[REQUEST_ID]
    )
    return ok(request, session, status=201)
