"""``POST /api/lnbits/webhook``: LNbits pushes a paid invoice of ours (the ``webhook`` it was created
with, ``LNBITS_WEBHOOK_URL``).

LNbits' body is the payment as its ``Payment`` model serialises it (``checking_id``,
``payment_hash``, ``amount`` in msat, ``status``, ``bolt11``, ``preimage``, ``webhook``, ...). Older
versions post it as a JSON object; newer ones pass ``payment.json()`` to httpx's ``json=``, so the
body is that JSON text encoded once more as a JSON string: both are read. Only ``payment_hash`` is
used, and nothing in the body is believed: the job or session the hash belongs to is advanced by
the same code as a ``GET`` or the watcher, which asks LNbits itself whether the invoice is paid.

The answer is 200 whatever the hash (unknown, unpaid, already handled: nothing changes) and comes
without waiting for the AI: LNbits posts each webhook once, with a 40 s timeout, and never again (it
only records the status it got), so there is nothing for a non-200 to ask it to retry; older
versions post from the loop that handles every paid invoice, which a slow answer would hold up. A
push lost or refused is caught by the watcher's reconciliation poll.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lf_contracts.errors import VALIDATION_ERROR, ApiError
from lightning_jobs.http.jobs import answer
from lightning_jobs.http.keys import NOTIFICATIONS

routes = web.RouteTableDef()


class LNbitsPayment(BaseModel):
    """The one field of LNbits' payment we read; the rest is LNbits' and ignored."""

    model_config = ConfigDict(extra="ignore")

    payment_hash: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


def _invalid(message: str) -> ApiError:
    return ApiError(VALIDATION_ERROR, details={"fields": [{"field": "body", "message": message}]})


def payment_of(raw: bytes) -> LNbitsPayment:
    """LNbits' payment from its webhook body: a JSON object, or one encoded as a JSON string."""
    try:
        body: Any = json.loads(raw)
        if isinstance(body, str):
            body = json.loads(body)
    except ValueError:
        raise _invalid("not JSON") from None
    try:
        return LNbitsPayment.model_validate(body)
    except ValidationError:
        raise _invalid("not an LNbits payment with a payment_hash of 64 hex digits") from None


@routes.post("/api/lnbits/webhook")
async def lnbits_webhook(request: web.Request) -> web.Response:
    payment = payment_of(await request.read())
    await request.app[NOTIFICATIONS].paid(payment.payment_hash.lower())
    return answer({"ok": True})
