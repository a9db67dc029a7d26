"""``POST /api/dev/stub/pay/{paymentHash}``: pay a stub invoice, as a wallet would (seed 002's dev
route). Registered only outside production and with ``LIGHTNING_BACKEND=stub``: in production the
path does not exist (404)."""

import re

from aiohttp import web

from lf_web import path_matching
from lightning_jobs.http.jobs import answer
from lightning_jobs.http.keys import STUB

routes = web.RouteTableDef()
PAYMENT_HASH = re.compile(r"[0-9a-f]{64}")


@routes.post("/api/dev/stub/pay/{paymentHash}")
async def pay_stub_invoice(request: web.Request) -> web.Response:
    payment_hash = path_matching(request, "paymentHash", PAYMENT_HASH, "must be 64 lowercase hex digits")
    await request.app[STUB].mark_paid(payment_hash)
    return answer({"ok": True, "paymentHash": payment_hash})
