"""``POST /webhook/lemonsqueezy``: LemonSqueezy's deliveries, recorded once before the 200.

In this order, each refusal in the envelope and nothing recorded: the body over the size limit
(400 ``validation_error``); the signature, on the raw bytes (401 ``webhook.invalid_signature``);
UTF-8 JSON object (400 ``webhook.invalid_json``); the JSON:API document of its event (400
``validation_error`` naming the fields); the checkout session for events that start something of
ours (400 ``webhook.missing_session``, 404 ``webhook.session_not_found``). Then the delivery is
recorded (a resend of the same bytes is recognised: 200 with ``duplicate``), and only then answered
200; anything unexpected on the way is 500 ``webhook.processing_failed``, which LemonSqueezy retries.
``meta.event_name`` (signed) decides what the delivery is, not the ``X-Event-Name`` header (unsigned).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web

from billing_webhook.adapters.lemonsqueezy import signatures
from billing_webhook.adapters.lemonsqueezy.payloads import (
    NEEDS_SESSION,
    Document,
    metric_label,
    model_for,
    without_nul,
)
from billing_webhook.application import queries
from billing_webhook.http.keys import BILLING, BILLING_SETTINGS
from billing_webhook.metrics import DELIVERIES_RECEIVED, DELIVERIES_REJECTED
from lf_contracts.errors import (
    WEBHOOK_INVALID_JSON,
    WEBHOOK_INVALID_SIGNATURE,
    WEBHOOK_MISSING_SESSION,
    WEBHOOK_PROCESSING_FAILED,
    WEBHOOK_SESSION_NOT_FOUND,
    ApiError,
)
from lf_web import PG_POOL, event_metadata, ok, parse_body

routes = web.RouteTableDef()

log = structlog.get_logger(__name__)


@routes.post("/webhook/lemonsqueezy")
async def lemonsqueezy(request: web.Request) -> web.Response:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        DELIVERIES_REJECTED.labels("body_too_large").inc()
        raise
    try:
        return await _receive(request, raw)
    except ApiError as refusal:
        DELIVERIES_REJECTED.labels(refusal.error.code).inc()
        raise
    except Exception:
        DELIVERIES_REJECTED.labels(WEBHOOK_PROCESSING_FAILED.code).inc()
        log.exception("webhook.unexpected_error")
        raise ApiError(WEBHOOK_PROCESSING_FAILED) from None


async def _receive(request: web.Request, raw: bytes) -> web.Response:
    secret = request.app[BILLING_SETTINGS].lemonsqueezy_webhook_secret or ""
    if not signatures.verify(raw, request.headers.get("X-Signature"), secret):
        raise ApiError(WEBHOOK_INVALID_SIGNATURE)
    payload = _json_object(raw)
    document: Document[Any] = await parse_body(request, model_for(payload), allow_nul=True)
    meta = document.meta
    if meta.event_name in NEEDS_SESSION:
        if meta.session_id is None:
            raise ApiError(WEBHOOK_MISSING_SESSION)
        if (
            meta.session_uuid is None
            or await queries.session(request.app[PG_POOL], meta.session_uuid) is None
        ):
            raise ApiError(WEBHOOK_SESSION_NOT_FOUND)
    recorded = await request.app[BILLING].deliveries.record(
        raw, meta.event_name, without_nul(payload), metadata=event_metadata(request, "lemonsqueezy")
    )
    DELIVERIES_RECEIVED.labels(metric_label(meta.event_name)).inc()
    log.info(
        "webhook.received",
        event_name=meta.event_name,
        delivery_id=recorded.delivery_id,
        duplicate=recorded.duplicate,
    )
    return ok(
        request, {"received": True, "deliveryId": recorded.delivery_id, "duplicate": recorded.duplicate}
    )


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(WEBHOOK_INVALID_JSON) from None
    if not isinstance(payload, dict):
        raise ApiError(WEBHOOK_INVALID_JSON, "Webhook body is not a JSON object")
    return payload
