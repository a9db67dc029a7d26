"""A fake LNbits: one wallet's ``/api/v1/payments`` API over HTTP on 127.0.0.1, in LNbits' wire format.

``FakeLNbits`` has an invoice key and an admin key (``X-Api-Key``; any other key is 401) and serves:

- ``POST /api/v1/payments`` ``{out: false, amount, unit: "sat", memo, expiry?, webhook?, extra?}``
  (either key): 201 with ``payment_hash``, ``payment_request`` and ``bolt11`` (a real BOLT11 invoice
  for ``network``, signed with BOLT #11's example node key, so any decoder reads it), ``amount`` in
  msat, ``status: "pending"``. As in LNbits, ``out`` defaults to true: a body without it is a payment.
- ``POST /api/v1/payments`` ``{out: true, bolt11}``: pays the invoice from the wallet's balance, with
  the admin key only (the invoice key gets 403). 201 with ``status: "success"`` and the preimage;
  400 for an invoice it cannot read, without an amount, expired or already paid by this wallet;
  520 when the payment fails (too little balance, or ``fail_payments()``).
- ``GET /api/v1/payments/{payment_hash}``: ``{paid, status, preimage, details}`` of an invoice made
  here or a payment made from here; 404 ``{"detail": "Payment does not exist."}``.
- ``POST /api/v1/payments/decode`` ``{data}``: the decoded invoice, or 400 ``{"message": ...}``.

Tests drive it: ``await settle(payment_hash)`` marks one of its invoices paid (as a payer would) and
calls the invoice's webhook as LNbits does: once, never retried, the body the paid ``Payment``
serialised (``checking_id``, ``payment_hash``, ``wallet_id``, ``amount`` in msat, ``status:
"success"``, ``preimage``, ``webhook``, ...), as a JSON object (older LNbits, ``json=payment.dict()``)
or with ``webhook_encoding="json_string"`` as that JSON once more encoded as a JSON string (newer
LNbits pass ``payment.json()`` to httpx's ``json=``); the status it got is kept in
``webhook_statuses`` (LNbits' ``webhook_status``, -1 when unreachable); ``deliver_webhook(hash)``
sends it again (a duplicate delivery); ``make_invoice(...)`` mints an invoice as a *user's* wallet would (a
refund to pay); ``fail_with(status)`` answers everything so; ``fail_payments()`` makes payments fail
(520); ``leave_payments_pending()`` answers payments ``pending`` until ``finish_payment(hash)``;
``lose_next_payment_answers(n)`` pays and then drops the connection; ``hang_after_next_payment()``
pays and then never answers (until ``recover()``): a payment whose outcome the caller cannot know.
``pay_attempts`` lists every ``out: true`` request, ``payments`` what was actually paid.

Also runnable for development::

    python -m lf_testing.fakes.lnbits --port 8797
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import bolt11 as bolt11_package
from aiohttp import web
from bolt11 import Bolt11, MilliSatoshi, TagChar, Tags

from lf_testing.fakes.server import FakeServer, json_body

# BOLT #11's example node key: public, which is what a fake's key should be.
NODE_KEY = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"
# Another key for invoices made "by a user's wallet", so they are not ours.
USER_NODE_KEY = "5ce5d1e4e4ef7ff3e3d4e8f0ab2e13b5c2ffa7cfb1c1aa67d9e2d4f6a8b9c0d1"
BODY = web.RequestKey("body", object)
KEY_TYPE = web.RequestKey("key_type", str)


@dataclass(frozen=True)
class MadeInvoice:
    bolt11: str
    payment_hash: str
    preimage: str


def make_invoice(
    amount_sats: int | None,
    *,
    network: str = "bcrt",
    expiry_seconds: int = 3600,
    created_at: int | None = None,
    description: str = "",
    amount_msat: int | None = None,
    private_key: str = USER_NODE_KEY,
) -> MadeInvoice:
    """A real, signed BOLT11 invoice (with a payment secret), as a user's wallet would make one.
    ``amount_msat`` overrides ``amount_sats`` for amounts that are not whole sats."""
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    tags = Tags()
    tags.add(TagChar.payment_hash, payment_hash)
    tags.add(TagChar.payment_secret, secrets.token_hex(32))
    tags.add(TagChar.description, description)
    tags.add(TagChar.expire_time, expiry_seconds)
    tags.add(TagChar.min_final_cltv_expiry, 18)
    msat = amount_msat if amount_msat is not None else (amount_sats * 1000 if amount_sats else None)
    invoice = Bolt11(
        currency=network,
        date=int(time.time()) if created_at is None else created_at,
        tags=tags,
        amount_msat=MilliSatoshi(msat) if msat else None,
    )
    return MadeInvoice(bolt11_package.encode(invoice, private_key), payment_hash, preimage.hex())


@dataclass
class Incoming:
    made: MadeInvoice
    amount_sats: int
    memo: str
    expires_at: float
    webhook: str | None
    extra: Any
    paid: bool = False


@dataclass
class Outgoing:
    bolt11: str
    payment_hash: str
    amount_sats: int
    status: str  # success | pending | failed
    preimage: str | None = None


@dataclass
class _Faults:
    status: int | None = None
    fail_payments: bool = False
    pending_payments: bool = False
    lose_answers: int = 0
    hang_after_payment: bool = False


class FakeLNbits(FakeServer):
    def __init__(
        self,
        *,
        invoice_key: str = "test-lnbits-invoice-key",
        admin_key: str = "test-lnbits-admin-key",
        network: str = "bcrt",
        balance_sats: int = 1_000_000,
        webhook_encoding: str = "object",
    ) -> None:
        super().__init__()
        assert webhook_encoding in ("object", "json_string")
        self.webhook_encoding = webhook_encoding
        self.webhook_statuses: dict[str, int] = {}
        self.invoice_key, self.admin_key, self.network = invoice_key, admin_key, network
        self.balance_sats = balance_sats
        self.invoices: dict[str, Incoming] = {}
        self.payments: dict[str, Outgoing] = {}
        self.pay_attempts: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.webhook_deliveries: list[tuple[str, dict[str, Any]]] = []
        self._faults = _Faults()

    # -- what a test does -------------------------------------------------------------------------

    async def settle(self, payment_hash: str) -> None:
        """A payer pays our invoice; its webhook (if any) is called, as LNbits does."""
        invoice = self.invoices[payment_hash]
        invoice.paid = True
        self.balance_sats += invoice.amount_sats
        if invoice.webhook:
            await self.deliver_webhook(payment_hash)

    async def deliver_webhook(self, payment_hash: str) -> int:
        """Post the invoice's webhook (LNbits' ``dispatch_webhook``); the status it got, -1 for none."""
        invoice = self.invoices[payment_hash]
        assert invoice.webhook, "the invoice was created without a webhook"
        payload = _webhook_json(invoice, self.invoice_key)
        self.webhook_deliveries.append((invoice.webhook, payload))
        body: Any = json.dumps(payload) if self.webhook_encoding == "json_string" else payload
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(invoice.webhook, json=body, timeout=aiohttp.ClientTimeout(total=40)) as answer,
            ):
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = -1  # LNbits does not retry a webhook either: the poll is what we rely on
        self.webhook_statuses[payment_hash] = status
        return status

    def make_invoice(self, amount_sats: int | None, **options: Any) -> MadeInvoice:
        """A user's invoice on this fake's network (see the module's ``make_invoice``)."""
        return make_invoice(amount_sats, **{"network": self.network, **options})

    def fail_with(self, status: int) -> None:
        self._faults.status = status

    def fail_payments(self) -> None:
        self._faults.fail_payments = True

    def leave_payments_pending(self) -> None:
        self._faults.pending_payments = True

    def finish_payment(self, payment_hash: str, *, success: bool = True) -> None:
        payment = self.payments[payment_hash]
        payment.status = "success" if success else "failed"
        if not success:
            self.balance_sats += payment.amount_sats

    def lose_next_payment_answers(self, count: int = 1) -> None:
        self._faults.lose_answers = count

    def hang_after_next_payment(self) -> None:
        self._faults.hang_after_payment = True

    def recover(self) -> None:
        self._faults = _Faults()
        super().recover()

    def paid_out(self, payment_hash: str) -> int:
        """Sats this wallet actually sent to the invoice with ``payment_hash`` (0 or its amount)."""
        payment = self.payments.get(payment_hash)
        return payment.amount_sats if payment is not None and payment.status == "success" else 0

    # -- the API ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_post("/api/v1/payments", self._create_or_pay)
        app.router.add_post("/api/v1/payments/decode", self._decode)
        app.router.add_get("/api/v1/payments/{payment_hash}", self._status)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await json_body(request)
        self.requests.append((request.method, request.path, body))
        request[BODY] = body
        await self.hang_if_told()
        if self._faults.status is not None:
            return _error(self._faults.status, "the fake was told to fail")
        key = request.headers.get("X-Api-Key")
        request[KEY_TYPE] = {self.invoice_key: "invoice", self.admin_key: "admin"}.get(key or "", "")
        return await handler(request)

    async def _create_or_pay(self, request: web.Request) -> web.StreamResponse:
        if not request[KEY_TYPE]:
            return _error(401, "Invalid key.")
        body = request[BODY]
        if not isinstance(body, dict):
            return _error(422, "the body is not a JSON object")
        if body.get("out", True) is False:
            return self._create(body)
        if request[KEY_TYPE] != "admin":
            return _error(403, "Invoice (or Admin) key required.")
        return await self._pay(request, body)

    def _create(self, body: dict[str, Any]) -> web.Response:
        amount, unit, memo = body.get("amount"), body.get("unit", "sat"), body.get("memo", "")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _error(400, "amount must be a positive integer")
        if unit != "sat":
            return _error(400, "this fake only knows unit sat")
        expiry = body.get("expiry") or 3600
        made = make_invoice(
            amount, network=self.network, expiry_seconds=expiry, description=memo, private_key=NODE_KEY
        )
        invoice = Incoming(made, amount, memo, time.time() + expiry, body.get("webhook"), body.get("extra"))
        self.invoices[made.payment_hash] = invoice
        return web.json_response(_incoming_json(invoice), status=201)

    async def _pay(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        self.pay_attempts.append(body)
        bolt11 = body.get("bolt11")
        if not isinstance(bolt11, str) or not bolt11:
            return _error(400, "Missing BOLT11 invoice")
        try:
            decoded = bolt11_package.decode(bolt11)
        except Exception:  # noqa: BLE001 - the package raises many kinds; all mean "not an invoice"
            return _error(400, "Invalid bolt11 invoice.")
        if not decoded.amount_msat:
            return _error(400, "Amountless invoices not supported.")
        if decoded.has_expired():
            return _error(400, "Invoice expired.")
        payment_hash = decoded.payment_hash
        known = self.payments.get(payment_hash)
        if known is not None and known.status != "failed":
            return _error(400, "Invoice already paid or in flight.")
        amount = int(decoded.amount_msat) // 1000
        if self._faults.fail_payments or amount > self.balance_sats:
            self.payments[payment_hash] = Outgoing(bolt11, payment_hash, amount, "failed")
            return _error(520, "Payment failed: the fake was told to fail, or the balance is short.")
        status = "pending" if self._faults.pending_payments else "success"
        internal = self.invoices.get(payment_hash)
        preimage = internal.made.preimage if internal else secrets.token_hex(32)
        payment = Outgoing(bolt11, payment_hash, amount, status, preimage)
        self.payments[payment_hash] = payment
        self.balance_sats -= amount
        if internal is not None and status == "success":
            internal.paid = True
            self.balance_sats += amount
        response = web.json_response(_outgoing_json(payment), status=201)
        if self._faults.hang_after_payment:
            self._faults.hang_after_payment = False
            self.hang()
            await self.hang_if_told()
        if self._faults.lose_answers > 0:
            self._faults.lose_answers -= 1
            assert request.transport is not None
            request.transport.close()  # paid; the answer never leaves
        return response

    async def _status(self, request: web.Request) -> web.Response:
        payment_hash = request.match_info["payment_hash"]
        with_details = bool(request[KEY_TYPE])
        invoice = self.invoices.get(payment_hash)
        if invoice is not None:
            expired = not invoice.paid and time.time() > invoice.expires_at
            status = "success" if invoice.paid else "failed" if expired else "pending"
            return _status_answer(
                invoice.paid, status, invoice.made.preimage, _incoming_json(invoice), with_details
            )
        payment = self.payments.get(payment_hash)
        if payment is not None:
            paid = payment.status == "success"
            return _status_answer(
                paid, payment.status, payment.preimage, _outgoing_json(payment), with_details
            )
        return _error(404, "Payment does not exist.")

    async def _decode(self, request: web.Request) -> web.Response:
        data = (request[BODY] or {}).get("data") if isinstance(request[BODY], dict) else None
        try:
            return web.json_response(bolt11_package.decode(str(data)).data)
        except Exception as error:  # noqa: BLE001 - LNbits answers any failure so
            return web.json_response({"message": f"Failed to decode: {error!s}"}, status=400)


def _incoming_json(invoice: Incoming) -> dict[str, Any]:
    return {
        "checking_id": invoice.made.payment_hash,
        "payment_hash": invoice.made.payment_hash,
        "payment_request": invoice.made.bolt11,
        "bolt11": invoice.made.bolt11,
        "amount": invoice.amount_sats * 1000,
        "fee": 0,
        "memo": invoice.memo,
        "status": "success" if invoice.paid else "pending",
        "extra": invoice.extra,
        "webhook": invoice.webhook,
    }


def _webhook_json(invoice: Incoming, wallet_id: str) -> dict[str, Any]:
    """The paid invoice as LNbits' ``Payment`` model serialises it (what its webhook posts)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    expiry = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(invoice.expires_at))
    return {
        "checking_id": invoice.made.payment_hash,
        "payment_hash": invoice.made.payment_hash,
        "wallet_id": hashlib.sha256(wallet_id.encode()).hexdigest()[:32],
        "amount": invoice.amount_sats * 1000,
        "fee": 0,
        "bolt11": invoice.made.bolt11,
        "status": "success",
        "memo": invoice.memo,
        "expiry": expiry,
        "webhook": invoice.webhook,
        "webhook_status": None,
        "preimage": invoice.made.preimage,
        "tag": None,
        "extension": None,
        "time": now,
        "created_at": now,
        "updated_at": now,
        "extra": invoice.extra or {},
    }


def _outgoing_json(payment: Outgoing) -> dict[str, Any]:
    return {
        "checking_id": payment.payment_hash,
        "payment_hash": payment.payment_hash,
        "bolt11": payment.bolt11,
        "amount": -payment.amount_sats * 1000,
        "fee": 0,
        "status": payment.status,
        "preimage": payment.preimage if payment.status == "success" else None,
    }


def _status_answer(
    paid: bool, status: str, preimage: str | None, details: dict[str, Any], with_details: bool
) -> web.Response:
    answer: dict[str, Any] = {"paid": paid, "status": status, "preimage": preimage if paid else None}
    if with_details:
        answer["details"] = details
    return web.json_response(answer)


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--invoice-key", default="dev-lnbits-invoice-key")
    parser.add_argument("--admin-key", default="dev-lnbits-admin-key")
    parser.add_argument("--network", default="bcrt")
    arguments = parser.parse_args()
    fake = FakeLNbits(
        invoice_key=arguments.invoice_key, admin_key=arguments.admin_key, network=arguments.network
    )
    banner = f"fake LNbits on {{url}} (invoice key {arguments.invoice_key}, admin key {arguments.admin_key})"
    asyncio.run(fake.serve_forever(arguments.port, banner))


if __name__ == "__main__":
    main()
