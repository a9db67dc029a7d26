"""What the job flow needs from the outside, as interfaces: a Lightning backend that issues and
watches invoices and pays refunds (``adapters/stub.py`` or ``adapters/lnbits.py``), a check of the refund
invoices users send (``adapters/bolt11.py``'s decoder plugs in), and the AI that evaluates and does
the work (``adapters/agent.py``, through execution-proxy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from uuid import UUID

from lf_service.execution_proxy import ExecutionFailed


def answered_failure(failure: ExecutionFailed) -> bool:
    """execution-proxy answered that the execution failed: it answers its reference with that
    failure for ever, so a retry asks under the next one (``domain/references.py``). Not so a
    failure that says nothing of the outcome (``ExecutionFailed.same_reference``: no answer, or it
    runs on another replica): it may run on, so it is asked again under the same reference, never a
    new one (that would execute and charge twice)."""
    return not failure.same_reference


@dataclass(frozen=True)
class Invoice:
    payment_hash: str
    payment_request: str
    """The BOLT11 string to show the payer."""
    amount_sats: int


@runtime_checkable
class InvoiceBackend(Protocol):
    """A Lightning node: the stub (``adapters/stub.py``) or LNbits (``adapters/lnbits.py``).

    Errors say what the caller may do next: ``BackendUnavailable``, nothing is known (for an invoice,
    try later; for a payment, its outcome is unknown: ``payment_status`` must be asked before any
    retry); ``BackendRefused``, a definite no and nothing happened."""

    async def create_invoice(self, amount_sats: int, memo: str) -> Invoice: ...

    async def is_paid(self, payment_hash: str) -> bool:
        """Whether the invoice is settled; an unknown or unpaid one is not."""
        ...

    async def pay(self, payment_request: str, amount_sats: int) -> str:
        """Pay a user's invoice (a refund) of exactly ``amount_sats`` and return its payment hash;
        ``BackendRefused`` when it was not paid, ``BackendUnavailable`` when the outcome is unknown
        (in flight included)."""
        ...

    async def payment_status(self, payment_hash: str) -> str:
        """What became of an outgoing payment: ``paid``, ``failed`` (nothing left the node: it may
        be tried again) or ``pending`` (in flight, or not known yet: ask again later)."""
        ...


class BackendUnavailable(Exception):
    """No usable answer from the backend: the outcome is unknown. A poll learns nothing (the job
    waits), an invoice is not issued, a payment is looked up before any retry."""


class BackendRefused(Exception):
    """A definite no from the backend; nothing was done (a refused payment was not made)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RefundInvoice:
    """A user's BOLT11 invoice, decoded: what a refund would pay."""

    payment_hash: str
    amount_sats: int


class RefundInvoiceChecker(Protocol):
    def check(self, payment_request: str) -> RefundInvoice:
        """Decode the invoice and check what does not depend on the job (network, expiry, form);
        raise ``InvalidRefundInvoice`` with the reason. The amount is the job's to check."""
        ...


@dataclass(frozen=True)
class Evaluation:
    accepted: bool
    reason: str


@dataclass(frozen=True)
class WorkModel:
    """The model a work step runs on and its execution-proxy provider: chosen (``WORK_MODEL``) when
    the work invoice is priced, recorded with it, and used by the work step however the setting has
    changed since (the user paid for that model's work)."""

    model: str
    provider: str


@dataclass(frozen=True)
class WorkDone:
    result: str
    input_tokens: int
    output_tokens: int


class Agent(Protocol):
    """The AI. ``reference_id`` is the execution's (``domain/references.py``): asked again (a claim
    taken over after a crash) it is answered from the first execution. Raises
    ``lf_service.execution_proxy.ExecutionProxyUnavailable`` during an outage (the step waits) and
    ``ExecutionFailed`` when the step cannot be done (``answered_failure``: its reference is spent)."""

    def work_model(self) -> WorkModel:
        """The work model of the settings now (what a new work invoice is priced on)."""
        ...

    async def evaluate(self, job_id: UUID, request: str, reference_id: str) -> Evaluation: ...

    async def work(self, job_id: UUID, request: str, reference_id: str, model: WorkModel) -> WorkDone: ...
