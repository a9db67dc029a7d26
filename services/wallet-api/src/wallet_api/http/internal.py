"""Service-to-service routes under /internal (X-Platform-Api-Key; never routed by the gateway)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg
from aiohttp import web
from pydantic import Field, StrictInt

from lf_contracts.errors import WALLET_RESERVATION_FAILED, ApiError
from lf_web import PG_POOL, RequestBody, event_metadata, ok, parse_body, path_uuid
from wallet_api.application import queries
from wallet_api.application.queries import Reservation
from wallet_api.domain.commands import Capture, Extend, Grant, Release, Reserve, SetFrozen, SetLimits
from wallet_api.http.keys import RESERVATION_TTL, WALLETS

routes = web.RouteTableDef()
ACTOR = "internal"
DATABASE_UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
MAX_TTL_SECONDS = 24 * 3600


class ReserveRequest(RequestBody):
    lenser_id: UUID
    amount: StrictInt  # range checked by the wallet, answered as wallet.invalid_amount
    reference_id: str = Field(min_length=1, max_length=200)
    ttl_seconds: int | None = Field(default=None, ge=1, le=MAX_TTL_SECONDS)


class ExtendRequest(RequestBody):
    ttl_seconds: StrictInt = Field(ge=1, le=MAX_TTL_SECONDS)


class CaptureRequest(RequestBody):
    amount: StrictInt


class GrantRequest(RequestBody):
    amount: StrictInt
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str = Field(min_length=1, max_length=200)


class LimitsRequest(RequestBody):
    daily: StrictInt | None = None
    monthly: StrictInt | None = None


def reservation_view(reservation: Reservation) -> dict:
    return {
        "reservationId": reservation.reservation_id,
        "lenserId": reservation.lenser_id,
        "referenceId": reservation.reference_id,
        "amount": reservation.amount,
        "status": reservation.status,
        "expiresAt": reservation.expires_at,
        "maxExpiresAt": reservation.max_expires_at,
        "captured": reservation.captured,
        "overrun": reservation.overrun,
    }


@routes.post("/internal/reservations")
async def reserve(request: web.Request) -> web.Response:
    body = await parse_body(request, ReserveRequest)
    wallets = request.app[WALLETS]
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else request.app[RESERVATION_TTL]
    try:
        reservation, created = await wallets.reserve(
            Reserve(body.lenser_id, body.amount, body.reference_id, ttl=ttl),
            metadata=event_metadata(request, ACTOR),
        )
    except DATABASE_UNREACHABLE:
        # The caller (execution-proxy) must learn that nothing was reserved and it may retry.
        raise ApiError(WALLET_RESERVATION_FAILED) from None
    view = {**reservation_view(reservation), "availableBalance": reservation.available_balance}
    return ok(request, view, status=201 if created else 200)


@routes.post("/internal/reservations/{reservation_id}/extend")
async def extend(request: web.Request) -> web.Response:
    body = await parse_body(request, ExtendRequest)
    reservation = await request.app[WALLETS].extend(
        Extend(path_uuid(request, "reservation_id"), timedelta(seconds=body.ttl_seconds)),
        metadata=event_metadata(request, ACTOR),
    )
    return ok(request, reservation_view(reservation))


@routes.post("/internal/reservations/{reservation_id}/capture")
async def capture(request: web.Request) -> web.Response:
    body = await parse_body(request, CaptureRequest)
    reservation = await request.app[WALLETS].capture(
        Capture(path_uuid(request, "reservation_id"), body.amount), metadata=event_metadata(request, ACTOR)
    )
    return ok(request, reservation_view(reservation))


@routes.post("/internal/reservations/{reservation_id}/release")
async def release(request: web.Request) -> web.Response:
    reservation = await request.app[WALLETS].release(
        Release(path_uuid(request, "reservation_id")), metadata=event_metadata(request, ACTOR)
    )
    return ok(request, reservation_view(reservation))


@routes.post("/internal/wallets/{lenser_id}/grants")
async def grant(request: web.Request) -> web.Response:
    body = await parse_body(request, GrantRequest)
    lenser_id = path_uuid(request, "lenser_id")
    granted = await request.app[WALLETS].grant(
        Grant(lenser_id, body.amount, reason=body.reason, idempotency_key=body.idempotency_key),
        metadata=event_metadata(request, ACTOR),
    )
    return ok(request, {"lenserId": lenser_id, "granted": granted}, status=201 if granted else 200)


@routes.post("/internal/wallets/{lenser_id}/freeze")
async def freeze(request: web.Request) -> web.Response:
    return await _set_frozen(request, True)


@routes.post("/internal/wallets/{lenser_id}/unfreeze")
async def unfreeze(request: web.Request) -> web.Response:
    return await _set_frozen(request, False)


async def _set_frozen(request: web.Request, frozen: bool) -> web.Response:
    lenser_id = path_uuid(request, "lenser_id")
    await request.app[WALLETS].set_frozen(
        SetFrozen(lenser_id, frozen), metadata=event_metadata(request, ACTOR)
    )
    return ok(request, {"lenserId": lenser_id, "frozen": frozen})


@routes.put("/internal/wallets/{lenser_id}/limits")
async def limits(request: web.Request) -> web.Response:
    body = await parse_body(request, LimitsRequest)
    lenser_id = path_uuid(request, "lenser_id")
    await request.app[WALLETS].set_limits(
        SetLimits(lenser_id, daily=body.daily, monthly=body.monthly), metadata=event_metadata(request, ACTOR)
    )
    return ok(request, {"lenserId": lenser_id, "daily": body.daily, "monthly": body.monthly})


@routes.get("/internal/reports/money")
async def money_report(request: web.Request) -> web.Response:
    return ok(request, await queries.money_report(request.app[PG_POOL]))
