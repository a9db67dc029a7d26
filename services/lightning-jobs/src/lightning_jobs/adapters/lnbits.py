"""LNbits through its HTTP API (REFERENCE.md "Lightning"; LNbits' ``/api/v1/payments`` routes).

- Create an invoice: ``POST /api/v1/payments`` with ``X-Api-Key: <invoice key>`` and
  ``{out: false, amount, unit: "sat", memo, expiry?, webhook?}``. ``out`` defaults to *true* in
  LNbits (a payment), so it is always sent. 201 with ``payment_hash`` and the BOLT11 as
  ``payment_request`` (older versions) or ``bolt11`` (newer ones).
- Check one: ``GET /api/v1/payments/{payment_hash}`` -> ``{paid, preimage, status?}``; 404 when unknown.
- Pay a refund: ``POST /api/v1/payments`` ``{out: true, bolt11}`` with the *admin* key (the invoice
  key gets 403). 201 with ``status`` success | pending | failed; 400 for an invoice it refuses; 520
  when the payment failed.
- A payment whose answer never came is looked up with the same ``GET`` and the paid invoice's payment
  hash, with the admin key: the key that paid, so the lookup is in the wallet that paid (a record in
  another wallet would not count, and "no record" is what allows a retry).

Errors are ``application.ports.BackendUnavailable`` (no usable answer) and ``BackendRefused`` (a
definite no). The keys are sent, never logged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter, Histogram

from lightning_jobs.adapters.bolt11 import InvalidInvoice, decode
from lightning_jobs.application.ports import BackendRefused, BackendUnavailable, Invoice

PAYMENTS = "/api/v1/payments"
# LNbits answers a failed payment with 520 ("Payment or Invoice error"): a definite failure.
PAYMENT_FAILED = 520

log = structlog.get_logger(__name__)

LNBITS_REQUESTS = Counter(
    "lightning_lnbits_requests_total", "Calls to LNbits, by operation and outcome", ["operation", "outcome"]
)
LNBITS_LATENCY = Histogram("lightning_lnbits_request_seconds", "Time LNbits took to answer", ["operation"])


class InvoiceState(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    """Expired or cancelled: it will never be paid."""


@dataclass(frozen=True, slots=True)
class InvoiceStatus:
    payment_hash: str
    state: InvoiceState
    preimage: str | None = None

    @property
    def paid(self) -> bool:
        return self.state is InvoiceState.PAID


class PaymentState(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Definitely not paid: another attempt cannot pay twice."""
    PENDING = "pending"
    """In flight: neither paid nor failed yet; ask again later, never pay again meanwhile."""
    UNKNOWN_TO_BACKEND = "unknown_to_backend"
    """LNbits has no record of paying it: the attempt never reached it, so it may be retried."""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment_hash: str
    state: PaymentState
    preimage: str | None = None
    fee_msat: int = 0


# What the job flow's port (``application.ports.InvoiceBackend.payment_status``) calls each state.
PORT_PAYMENT_STATUS = {
    PaymentState.SUCCEEDED: "paid",
    PaymentState.FAILED: "failed",
    PaymentState.UNKNOWN_TO_BACKEND: "failed",
    PaymentState.PENDING: "pending",
}


class LNbitsBackend:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        url: str,
        invoice_key: str,
        admin_key: str,
        timeout_seconds: float = 10.0,
        pay_timeout_seconds: float = 60.0,
        webhook_url: str | None = None,
    ) -> None:
        self._http, self._url = http, url.rstrip("/")
        self._invoice_key, self._admin_key = invoice_key, admin_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # Paying waits for the route to settle; past this the outcome is unknown, not failed.
        self._pay_timeout = aiohttp.ClientTimeout(total=pay_timeout_seconds)
        # Where LNbits pushes each of our invoices once paid (``http/lnbits.py``); None: no push.
        self._webhook_url = webhook_url

    async def create_invoice(
        self,
        amount_sats: int,
        memo: str,
        *,
        expiry_seconds: int | None = None,
        webhook_url: str | None = None,
    ) -> Invoice:
        if amount_sats <= 0:
            raise ValueError("an invoice is for a positive number of sats")
        body: dict[str, Any] = {"out": False, "amount": amount_sats, "unit": "sat", "memo": memo}
        if expiry_seconds is not None:
            body["expiry"] = expiry_seconds
        if webhook_url or self._webhook_url:
            body["webhook"] = webhook_url or self._webhook_url
        status, answer = await self._call("create_invoice", "POST", PAYMENTS, self._invoice_key, body)
        if status not in (200, 201):
            raise _refusal("create_invoice", status, answer)
        try:
            payment_hash = _hex(answer["payment_hash"])
            bolt11 = answer.get("payment_request") or answer["bolt11"]
            if not isinstance(bolt11, str) or not bolt11:
                raise ValueError("no BOLT11")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _bad_answer("create_invoice") from None
        return Invoice(payment_hash, bolt11, amount_sats)

    async def invoice_status(self, payment_hash: str) -> InvoiceStatus:
        status, answer = await self._call(
            "invoice_status", "GET", f"{PAYMENTS}/{_hex(payment_hash)}", self._invoice_key
        )
        if status != 200:
            raise _refusal("invoice_status", status, answer)
        paid, state, preimage = _payment_fields("invoice_status", answer)
        if paid:
            return InvoiceStatus(payment_hash, InvoiceState.PAID, preimage)
        failed = state in ("failed", "expired", "cancelled")
        return InvoiceStatus(payment_hash, InvoiceState.FAILED if failed else InvoiceState.PENDING)

    async def pay_invoice(self, bolt11: str) -> PaymentResult:
        status, answer = await self._call(
            "pay_invoice",
            "POST",
            PAYMENTS,
            self._admin_key,
            {"out": True, "bolt11": bolt11},
            timeout=self._pay_timeout,
            definite_failure=PAYMENT_FAILED,
        )
        if status == PAYMENT_FAILED:
            raise BackendRefused(f"LNbits could not pay the invoice: {_detail(answer)}", status=status)
        if status not in (200, 201):
            raise _refusal("pay_invoice", status, answer)
        try:
            payment_hash = _hex(answer["payment_hash"])
            state = answer.get("status")
            fee = abs(int(answer.get("fee") or 0))
        except (KeyError, TypeError, ValueError, AttributeError):
            # It answered 201: a payment exists, but we cannot tell which or how it went.
            raise _bad_answer("pay_invoice") from None
        if state == "failed":
            return PaymentResult(payment_hash, PaymentState.FAILED)
        if state == "success":
            return PaymentResult(payment_hash, PaymentState.SUCCEEDED, answer.get("preimage"), fee)
        # "pending", or an older LNbits that answers only {payment_hash, checking_id}, also while the
        # payment is in flight: not paid until payment_status says so.
        return PaymentResult(payment_hash, PaymentState.PENDING)

    async def payment_result(self, payment_hash: str) -> PaymentResult:
        """What became of a payment we may have sent, by the paid invoice's payment hash:
        ``UNKNOWN_TO_BACKEND`` when it was never received. Any error raised here leaves the outcome
        unknown: never pay again on an error from this call."""
        status, answer = await self._call(
            "payment_status", "GET", f"{PAYMENTS}/{_hex(payment_hash)}", self._admin_key
        )
        if status == 404:
            return PaymentResult(payment_hash, PaymentState.UNKNOWN_TO_BACKEND)
        if status != 200:
            raise _refusal("payment_status", status, answer)
        paid, state, preimage = _payment_fields("payment_status", answer)
        if paid:
            return PaymentResult(payment_hash, PaymentState.SUCCEEDED, preimage)
        if state == "failed":
            return PaymentResult(payment_hash, PaymentState.FAILED)
        return PaymentResult(payment_hash, PaymentState.PENDING)

    # ``application.ports.InvoiceBackend``: what the job flow calls.

    async def is_paid(self, payment_hash: str) -> bool:
        return (await self.invoice_status(payment_hash)).paid

    async def pay(self, payment_request: str, amount_sats: int) -> str:
        """Pay a refund of exactly ``amount_sats`` and return its payment hash once LNbits says it
        succeeded. ``BackendRefused``: not paid (also when the invoice is for another amount: it is
        then never sent). ``BackendUnavailable``: the outcome is unknown, in flight included; look it
        up with ``payment_status`` before any retry."""
        try:
            amount = decode(payment_request).amount_sats
        except InvalidInvoice as invalid:
            raise BackendRefused(f"not paid: {invalid.message}") from None
        if amount != amount_sats:
            raise BackendRefused(f"not paid: the invoice is not for {amount_sats} sats")
        result = await self.pay_invoice(payment_request)
        if result.state is PaymentState.SUCCEEDED:
            return result.payment_hash
        if result.state is PaymentState.FAILED:
            raise BackendRefused("LNbits could not pay the invoice")
        raise BackendUnavailable("the payment is in flight: its outcome is not known yet")

    async def payment_status(self, payment_hash: str) -> str:
        """``paid``, ``failed`` (also when LNbits never received it: it may be sent again) or
        ``pending``; ``BackendUnavailable`` or ``BackendRefused`` when LNbits cannot say."""
        return PORT_PAYMENT_STATUS[(await self.payment_result(payment_hash)).state]

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        key: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
        definite_failure: int | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON or None); an answer that says nothing (5xx other than ``definite_failure``,
        429) or none at all raises ``BackendUnavailable``."""
        started = time.perf_counter()
        headers = {"X-Api-Key": key, "Accept": "application/json"}
        try:
            async with self._http.request(
                method, f"{self._url}{path}", json=body, headers=headers, timeout=timeout or self._timeout
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            _count(operation, "unreachable", started)
            log.warning("lnbits.unreachable", operation=operation, error=type(error).__name__)
            raise BackendUnavailable(f"LNbits did not answer {operation}: {type(error).__name__}") from None
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if (status >= 500 and status != definite_failure) or status == 429:
            _count(operation, "unavailable", started)
            log.warning("lnbits.unavailable", operation=operation, status=status)
            raise BackendUnavailable(f"LNbits answered {operation} with {status}")
        _count(operation, "ok" if status < 300 else "refused", started)
        return status, answer


def _payment_fields(operation: str, answer: Any) -> tuple[bool, str | None, str | None]:
    try:
        paid = answer["paid"]
        if not isinstance(paid, bool):
            raise TypeError("paid is not a boolean")
        state = answer.get("status")
        preimage = answer.get("preimage")
    except (KeyError, TypeError, AttributeError):
        raise _bad_answer(operation) from None
    return paid, state if isinstance(state, str) else None, preimage if isinstance(preimage, str) else None


def _hex(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise ValueError("a payment hash is 64 hex digits")
    bytes.fromhex(value)
    return value.lower()


def _detail(answer: Any) -> str:
    """LNbits' error text: FastAPI's ``{"detail": ...}`` (or ``{"message": ...}`` from decode)."""
    if isinstance(answer, dict):
        text = answer.get("detail") or answer.get("message")
        if text:
            return str(text)[:300]
    return "no error text"


def _refusal(operation: str, status: int, answer: Any) -> BackendRefused:
    log.warning("lnbits.refused", operation=operation, status=status, detail=_detail(answer))
    return BackendRefused(f"LNbits refused {operation} ({status}): {_detail(answer)}", status=status)


def _bad_answer(operation: str) -> BackendUnavailable:
    log.error("lnbits.malformed_answer", operation=operation)
    return BackendUnavailable(f"LNbits' answer to {operation} is not usable")


def _count(operation: str, outcome: str, started: float) -> None:
    LNBITS_REQUESTS.labels(operation, outcome).inc()
    LNBITS_LATENCY.labels(operation).observe(time.perf_counter() - started)
