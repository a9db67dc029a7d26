"""Seed 002's session routes under ``/api`` (mode 2: pay once, run many), in its own shapes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import Field

from lf_web import RequestBody, event_metadata, parse_body
from lightning_jobs.domain.errors import SessionNotFound
from lightning_jobs.domain.session import MAX_DEPOSIT_SATS, MIN_DEPOSIT_SATS
from lightning_jobs.http.jobs import answer, invoice_info
from lightning_jobs.http.keys import SESSION_FLOW

routes = web.RouteTableDef()


class DepositRequest(RequestBody):
    amount_sats: int = Field(ge=MIN_DEPOSIT_SATS, le=MAX_DEPOSIT_SATS)


class SessionRequestBody(RequestBody):
    request: str = Field(min_length=1, max_length=20_000)


def session_id_of(request: web.Request) -> UUID:
    """One that is no session id names no session (404, not 400)."""
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise SessionNotFound() from None


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorized(request: web.Request) -> UUID:
    """The path's session, once the request's macaroon is shown to be for it (else 401)."""
    session_id = session_id_of(request)
    request.app[SESSION_FLOW].verify(bearer(request), session_id)
    return session_id


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = await parse_body(request, DepositRequest)
    row = await request.app[SESSION_FLOW].open(body.amount_sats, metadata=event_metadata(request, "client"))
    return answer(
        {"sessionId": row["session_id"], "state": row["state"], "invoice": deposit_invoice(row)}, 201
    )


@routes.get("/api/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    flow = request.app[SESSION_FLOW]
    row = await flow.advance(session_id_of(request))
    view = session_view(row, flow.idle)
    if row["state"] in ("active", "paused"):
        view["macaroon"] = flow.macaroon(row["session_id"])
    return answer(view)


@routes.post("/api/sessions/{id}/request")
async def submit_request(request: web.Request) -> web.Response:
    session_id = authorized(request)
    body = await parse_body(request, SessionRequestBody)
    done = await request.app[SESSION_FLOW].request(
        session_id, body.request, metadata=event_metadata(request, "client")
    )
    return answer(done)


@routes.post("/api/sessions/{id}/topup")
async def topup(request: web.Request) -> web.Response:
    session_id = authorized(request)
    body = await parse_body(request, DepositRequest)
    row = await request.app[SESSION_FLOW].topup(
        session_id, body.amount_sats, metadata=event_metadata(request, "client")
    )
    return answer({"sessionId": row["session_id"], "topup": pending_topup(row)})


class ClaimRefundRequest(RequestBody):
    invoice: str = Field(min_length=1, max_length=2_000)


@routes.post("/api/sessions/{id}/refund")
async def claim_refund(request: web.Request) -> web.Response:
    """Ours (seed 002 keeps an expired session's balance): claim what it owes back."""
    session_id = session_id_of(request)
    flow = request.app[SESSION_FLOW]
    flow.verify(bearer(request), session_id, check_expiry=False)
    body = await parse_body(request, ClaimRefundRequest)
    paid = await flow.claim_refund(session_id, body.invoice, metadata=event_metadata(request, "client"))
    return answer({"ok": True, **paid, "message": f"Refund of {paid['refundAmountSats']} sats sent"})


def deposit_invoice(row: dict[str, Any]) -> dict[str, Any]:
    return invoice_info(row["deposit_invoice"], row["deposit_amount_sats"], row["deposit_payment_hash"])


def pending_topup(row: dict[str, Any]) -> dict[str, Any]:
    return invoice_info(row["topup_invoice"], row["topup_amount_sats"], row["topup_payment_hash"])


def session_view(row: dict[str, Any], idle: timedelta) -> dict[str, Any]:
    view: dict[str, Any] = {
        "sessionId": row["session_id"],
        "state": row["state"],
        "balanceSats": row["balance_sats"],
        "minimumBalanceSats": row["minimum_balance_sats"],
    }
    if row["last_activity_at"] is not None and row["state"] in ("active", "paused"):
        view["expiresAt"] = row["last_activity_at"] + idle  # 24 h idle, from the last activity
    if row["state"] == "awaiting_payment":
        view["invoice"] = deposit_invoice(row)
    if row["topup_payment_hash"] is not None:
        view["pendingTopup"] = pending_topup(row)
    if row["state"] == "expired":
        view["owedSats"] = row["owed_sats"]  # ours: what is owed back (POST .../refund claims it)
        view["refundState"] = row["refund_state"]
    return view
