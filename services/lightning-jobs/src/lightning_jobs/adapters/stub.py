"""``LIGHTNING_BACKEND=stub``: a Lightning "node" inside the service's own database, for development
and tests. Its invoices are paid by hand (``POST /api/dev/stub/pay/{paymentHash}``, absent in
production) and its refunds "leave" by being written down. Its invoices are BOLT11-shaped strings
that say their amount and hash (``lnbcrt<sats>stub1<hash>``), never payable by a real wallet.

The stub's tables are an outside system's state (LNbits keeps the same), not events of ours.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import asyncpg

from lightning_jobs.application.ports import BackendRefused, Invoice, RefundInvoice
from lightning_jobs.domain.errors import InvalidRefundInvoice, StubInvoiceNotFound

_STUB = re.compile(r"^lnbcrt(?P<sats>[1-9][0-9]*)stub1(?P<hash>[0-9a-f]{64})$")


def stub_invoice(amount_sats: int, payment_hash: str | None = None) -> str:
    """A stub BOLT11 invoice for ``amount_sats`` (what a user's wallet would hand over in the stub world)."""
    return f"lnbcrt{amount_sats}stub1{payment_hash or secrets.token_hex(32)}"


class StubBackend:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_invoice(self, amount_sats: int, memo: str) -> Invoice:
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        request = stub_invoice(amount_sats, payment_hash)
        await self.pool.execute(
            "INSERT INTO stub_invoices (payment_hash, payment_request, amount_sats, memo)"
            " VALUES ($1, $2, $3, $4)",
            payment_hash,
            request,
            amount_sats,
            memo,
        )
        return Invoice(payment_hash, request, amount_sats)

    async def is_paid(self, payment_hash: str) -> bool:
        paid = await self.pool.fetchval(
            "SELECT paid_at IS NOT NULL FROM stub_invoices WHERE payment_hash = $1", payment_hash
        )
        return bool(paid)

    async def mark_paid(self, payment_hash: str) -> None:
        """The dev route: the invoice is paid (again: no change)."""
        found = await self.pool.fetchval(
            "UPDATE stub_invoices SET paid_at = coalesce(paid_at, now())"
            " WHERE payment_hash = $1 RETURNING true",
            payment_hash,
        )
        if not found:
            raise StubInvoiceNotFound()

    async def pay(self, payment_request: str, amount_sats: int) -> str:
        invoice = StubRefundChecker().check(payment_request)
        if invoice.amount_sats != amount_sats:
            raise BackendRefused("the invoice is for another amount")
        paid = await self.pool.fetchval(
            "INSERT INTO stub_payments (payment_hash, payment_request, amount_sats) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            invoice.payment_hash,
            payment_request,
            amount_sats,
        )
        if not paid:  # as a node does: an invoice is paid once
            raise BackendRefused("invoice already paid")
        return invoice.payment_hash

    async def payment_status(self, payment_hash: str) -> str:
        """The stub pays in one statement: a payment it has no row of was never made."""
        found = await self.pool.fetchval(
            "SELECT true FROM stub_payments WHERE payment_hash = $1", payment_hash
        )
        return "paid" if found else "failed"

    async def payments(self) -> list[tuple[str, int]]:
        """What the stub node has paid out: (payment hash, sats) each."""
        rows = await self.pool.fetch("SELECT payment_hash, amount_sats FROM stub_payments ORDER BY paid_at")
        return [(row["payment_hash"], row["amount_sats"]) for row in rows]


class StubRefundChecker:
    """Reads the stub's invoices; the real BOLT11 decoder (``adapters/bolt11.py``) replaces it with
    ``LIGHTNING_BACKEND=lnbits``."""

    def check(self, payment_request: str) -> RefundInvoice:
        found = _STUB.match(payment_request.strip().lower())
        if found is None:
            raise InvalidRefundInvoice("Invalid BOLT11 invoice")
        return RefundInvoice(found["hash"], int(found["sats"]))
