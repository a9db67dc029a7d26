"""What lightning-jobs needs from a Lightning backend: ``InvoiceBackend``, which LNbits
(``adapters.lnbits.LNbitsBackend``) and the stub backend both satisfy, and the values and errors they
speak. The application codes against this module only.

Errors say what the caller may do next:

- ``BackendUnavailable``: no usable answer (unreachable, timed out, 5xx, 429, an answer we cannot
  read). Nothing is known: for an invoice, try later; for a *payment*, its outcome is unknown, so
  ``payment_status`` of the invoice's payment hash must be asked before any retry.
- ``BackendRefused``: the backend answered no, and nothing happened (a bad key, a bad request, an
  invoice it will not pay, too little balance). Retrying the same call will not help; a payment
  refused this way was not made.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class BackendUnavailable(Exception):
    """No usable answer: the outcome is unknown."""


class BackendRefused(Exception):
    """A definite no; nothing was done."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CreatedInvoice:
    payment_hash: str
    payment_request: str
    """The BOLT11 string to show the payer."""
    amount_sats: int


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
    """The backend has no record of paying it: the attempt never reached it, so it may be retried."""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment_hash: str
    state: PaymentState
    preimage: str | None = None
    fee_msat: int = 0


@runtime_checkable
class InvoiceBackend(Protocol):
    async def create_invoice(
        self,
        amount_sats: int,
        memo: str,
        *,
        expiry_seconds: int | None = None,
        webhook_url: str | None = None,
    ) -> CreatedInvoice:
        """A new invoice for ``amount_sats`` to be paid to us. ``webhook_url``, where the backend
        supports one, is called when it is paid (a hint only: ``invoice_status`` is the truth)."""
        ...

    async def invoice_status(self, payment_hash: str) -> InvoiceStatus:
        """Whether an invoice we made has been paid. Raises ``BackendRefused`` for a hash the
        backend does not know."""
        ...

    async def pay_invoice(self, bolt11: str) -> PaymentResult:
        """Pay someone's invoice (a refund). ``SUCCEEDED`` or ``PENDING`` or ``FAILED``; raises
        ``BackendRefused`` (not paid) or ``BackendUnavailable`` (outcome unknown: ask
        ``payment_status`` with the invoice's payment hash before trying again)."""
        ...

    async def payment_status(self, payment_hash: str) -> PaymentResult:
        """What became of a payment we may have sent, by the paid invoice's payment hash:
        ``UNKNOWN_TO_BACKEND`` when it was never received. Any error raised here (unavailable or
        refused) leaves the outcome unknown: never pay again on an error from this call."""
        ...
