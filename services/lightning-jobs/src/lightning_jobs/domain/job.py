"""A Lightning-paid agent job (seed 002, mode 1). Event-sourced, stream ``job-<jobId>``.

    awaiting_eval_payment -> evaluating -> rejected
                                        -> awaiting_work_payment -> executing -> complete | failed
    (evaluating -> failed too: the evaluation itself could not be done)

Each step that calls the AI (the evaluation, the work) is claimed by a command on this stream
before the call (``eval_paid``, ``work_paid``, ``reclaim``: ``StepClaimed``): however many pollers,
watchers and replicas notice a payment at once, the stream's lock lets one of them claim the step,
and only the claimant calls the AI. A claim holds for ``lease``; a claimant that died (a crash
between the claim and the report) leaves a lapsed claim, which the next poller or the watcher
claims again. Both attempts ask execution-proxy under the same reference id, which it answers
from its record of the first execution: the step still runs once. A failure execution-proxy
ANSWERED (a transient one: the provider's 5xx, a 429) is recorded (``retried``: ``StepRetried``),
and the next claim of the step asks under a new reference (``StepClaimed.execution`` + 1):
execution-proxy answers a reference whose execution failed with that failure for ever, so a retry
under the old one could never succeed (``domain/references.py``).

A step's report (``rejected``, ``work_invoiced``, ``completed``, ``failed``) is taken once: the
first report of the step moves the job on, and any later one (a lapsed claimant's) finds the state
moved and changes nothing.

Refunds: what a job was paid for and did not deliver is owed back: after the work, the work
invoice less the actual charge (never negative); after a failure, what was held for the failed
step. ``claim_refund`` claims it for one BOLT11 invoice of exactly that amount before anything is
paid (a second claim meanwhile is refused), ``refund_paid`` settles it, ``refund_failed`` releases
the claim for another try.

Money is integer sats; USD amounts are exact decimals carried as strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
from uuid import UUID

from lf_eventstore import Aggregate, DomainEvent, by_name
from lightning_jobs.domain.errors import InvalidRefundInvoice, JobNotFound, RefundNotClaimable
from lightning_jobs.domain.pricing import refund_owed
from lightning_jobs.domain.references import reference_id

EVAL, WORK = "eval", "work"
TERMINAL = ("rejected", "complete", "failed")
STEP_STATES = {EVAL: "evaluating", WORK: "executing"}


# --- events ----------------------------------------------------------------------------------


class JobCreated(DomainEvent):
    job_id: UUID
    request: str
    eval_payment_hash: str
    eval_invoice: str
    eval_amount_sats: int


class EvalPaid(DomainEvent):
    job_id: UUID
    amount_sats: int


class StepClaimed(DomainEvent):
    job_id: UUID
    step: str  # "eval" | "work"
    attempt: int
    lease_until: datetime
    execution: int = 1
    """Which execution of the step this claim asks for (its reference id's): one more than the
    step's last after a recorded failure (``StepRetried``), else the same. Absent from events
    recorded before it was: those all asked under the step's first reference."""


class StepRetried(DomainEvent):
    """A claim's execution failed transiently, as execution-proxy answered: the step is claimed
    again after the claim's lease, under a new reference."""

    job_id: UUID
    step: str
    attempt: int
    code: str
    error_message: str


class JobRejected(DomainEvent):
    job_id: UUID
    reason: str
    eval_fee_sats: int


class WorkInvoiced(DomainEvent):
    job_id: UUID
    eval_fee_sats: int
    reason: str
    work_payment_hash: str
    work_invoice: str
    work_amount_sats: int
    estimated_cost_usd: str
    margin_pct: str
    btc_price_usd: str
    btc_price_source: str
    work_model: str | None = None
    """The model the work was priced on and will run on, and its provider (absent from events
    recorded before they were locked here: those run on the ``WORK_MODEL`` of the moment)."""
    work_provider: str | None = None


class WorkPaid(DomainEvent):
    job_id: UUID
    amount_sats: int


class JobCompleted(DomainEvent):
    job_id: UUID
    result: str
    input_tokens: int
    output_tokens: int
    actual_cost_usd: str
    actual_charge_usd: str
    actual_amount_sats: int
    work_amount_sats: int
    refund_amount_sats: int


class JobFailed(DomainEvent):
    job_id: UUID
    step: str
    error_message: str
    refund_amount_sats: int
    """What was held for the failed step, owed back in full."""


class RefundClaimed(DomainEvent):
    job_id: UUID
    payment_hash: str
    invoice: str
    amount_sats: int


class RefundPaid(DomainEvent):
    job_id: UUID
    payment_hash: str
    amount_sats: int


class RefundPaymentFailed(DomainEvent):
    job_id: UUID
    payment_hash: str
    reason: str


JOB_EVENTS = (
    JobCreated,
    EvalPaid,
    StepClaimed,
    StepRetried,
    JobRejected,
    WorkInvoiced,
    WorkPaid,
    JobCompleted,
    JobFailed,
    RefundClaimed,
    RefundPaid,
    RefundPaymentFailed,
)


@dataclass(frozen=True)
class Claim:
    """A step this caller (alone) is to run now."""

    job_id: UUID
    step: str
    attempt: int
    request: str
    eval_fee_sats: int
    work_amount_sats: int | None
    execution: int = 1

    @property
    def reference_id(self) -> str:
        """One per execution of the step, not per claim: a claim taken again after a crash is
        answered from execution-proxy's record of the lapsed claim's execution (never run twice);
        only a claim after a recorded failure (``StepRetried``) asks under a new one."""
        return reference_id(f"lightning:job:{self.job_id}", self.step, self.execution)


@dataclass(frozen=True)
class WorkQuoted:
    """The work invoice and how its amount was priced (the BTC price locked now)."""

    payment_hash: str
    invoice: str
    amount_sats: int
    estimated_cost_usd: str
    margin_pct: str
    btc_price_usd: str
    btc_price_source: str
    work_model: str
    work_provider: str


class Job(Aggregate):
    event_types = by_name(*JOB_EVENTS)

    def __init__(self) -> None:
        super().__init__()
        self.job_id: UUID | None = None
        self.state = "new"
        self.request = ""
        self.eval_payment_hash = ""
        self.eval_amount_sats = 0
        self.work_payment_hash: str | None = None
        self.work_amount_sats: int | None = None
        self.held_sats = 0
        self.claim_step: str | None = None
        self.claim_attempt = 0
        self.claim_execution = 1
        self.claim_failed = False
        """The current claim's execution failed (``StepRetried``): the next claim asks anew."""
        self.lease_until: datetime | None = None
        self.refund_owed = 0
        self.refund_state = "not_applicable"  # | pending | claimed | paid
        self.refund_payment_hash: str | None = None

    # --- commands ------------------------------------------------------------------------------

    def create(self, job_id: UUID, request: str, payment_hash: str, invoice: str, amount_sats: int) -> None:
        if self.job_id is not None:
            return  # the same id twice (a retried commit): the job exists
        self._record(
            JobCreated(
                job_id=job_id,
                request=request,
                eval_payment_hash=payment_hash,
                eval_invoice=invoice,
                eval_amount_sats=amount_sats,
            )
        )

    def eval_paid(self, now: datetime, lease: timedelta) -> Claim | None:
        """The eval invoice is paid: claim the evaluation, unless the job has moved on already."""
        if self.state != "awaiting_eval_payment":
            return None
        assert self.job_id is not None
        self._record(EvalPaid(job_id=self.job_id, amount_sats=self.eval_amount_sats))
        return self._claim(EVAL, now, lease)

    def work_paid(self, now: datetime, lease: timedelta) -> Claim | None:
        if self.state != "awaiting_work_payment":
            return None
        assert self.job_id is not None and self.work_amount_sats is not None
        self._record(WorkPaid(job_id=self.job_id, amount_sats=self.work_amount_sats))
        return self._claim(WORK, now, lease)

    def reclaim(self, now: datetime, lease: timedelta) -> Claim | None:
        """Claim a step again whose claimant has not reported within its lease."""
        if self.claim_step is None or self.state != STEP_STATES[self.claim_step]:
            return None
        if self.lease_until is not None and now < self.lease_until:
            return None
        return self._claim(self.claim_step, now, lease)

    def retried(self, step: str, attempt: int, code: str, error_message: str) -> None:
        """Record that claim ``attempt``'s execution failed transiently (its claimant's report):
        the step's next claim asks under a new reference. Nothing when the step has moved on or a
        later claim holds it (a lapsed claimant's late report)."""
        if self.state != STEP_STATES[step] or self.claim_step != step or self.claim_attempt != attempt:
            return
        if self.claim_failed:
            return  # reported already
        assert self.job_id is not None
        self._record(
            StepRetried(
                job_id=self.job_id, step=step, attempt=attempt, code=code, error_message=error_message
            )
        )

    def rejected(self, reason: str) -> None:
        if self.state != "evaluating":
            return
        assert self.job_id is not None
        self._record(JobRejected(job_id=self.job_id, reason=reason, eval_fee_sats=self.eval_amount_sats))

    def work_invoiced(self, reason: str, quote: WorkQuoted) -> None:
        if self.state != "evaluating":
            return
        assert self.job_id is not None
        self._record(
            WorkInvoiced(
                job_id=self.job_id,
                eval_fee_sats=self.eval_amount_sats,
                reason=reason,
                work_payment_hash=quote.payment_hash,
                work_invoice=quote.invoice,
                work_amount_sats=quote.amount_sats,
                estimated_cost_usd=quote.estimated_cost_usd,
                margin_pct=quote.margin_pct,
                btc_price_usd=quote.btc_price_usd,
                btc_price_source=quote.btc_price_source,
                work_model=quote.work_model,
                work_provider=quote.work_provider,
            )
        )

    def completed(
        self,
        result: str,
        *,
        input_tokens: int,
        output_tokens: int,
        actual_cost_usd: str,
        actual_charge_usd: str,
        actual_amount_sats: int,
    ) -> None:
        if self.state != "executing":
            return
        assert self.job_id is not None and self.work_amount_sats is not None
        # The charge is capped at what was paid: an estimate that fell short is the platform's loss,
        # never a debt of the user's (and a refund is never negative).
        refund = refund_owed(self.work_amount_sats, actual_amount_sats)
        charged = self.work_amount_sats - refund
        self._record(
            JobCompleted(
                job_id=self.job_id,
                result=result,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                actual_cost_usd=actual_cost_usd,
                actual_charge_usd=actual_charge_usd,
                actual_amount_sats=charged,
                work_amount_sats=self.work_amount_sats,
                refund_amount_sats=refund,
            )
        )

    def failed(self, step: str, error_message: str) -> None:
        if self.state != STEP_STATES[step]:
            return
        assert self.job_id is not None
        self._record(
            JobFailed(
                job_id=self.job_id, step=step, error_message=error_message, refund_amount_sats=self.held_sats
            )
        )

    def claim_refund(self, payment_hash: str, invoice: str, amount_sats: int) -> None:
        if self.state not in ("complete", "failed"):
            raise RefundNotClaimable("Job not complete")
        if self.refund_state == "paid":
            raise RefundNotClaimable("Refund already paid")
        if self.refund_owed <= 0:
            raise RefundNotClaimable("No refund owed for this job")
        if self.refund_state == "claimed":
            raise RefundNotClaimable("Refund is already being paid")
        if amount_sats != self.refund_owed:
            raise InvalidRefundInvoice(
                f"Invoice amount must be exactly {self.refund_owed} sats (got {amount_sats})"
            )
        assert self.job_id is not None
        self._record(
            RefundClaimed(
                job_id=self.job_id, payment_hash=payment_hash, invoice=invoice, amount_sats=amount_sats
            )
        )

    def refund_paid(self, payment_hash: str) -> None:
        if self.refund_state != "claimed" or self.refund_payment_hash != payment_hash:
            return
        assert self.job_id is not None
        self._record(RefundPaid(job_id=self.job_id, payment_hash=payment_hash, amount_sats=self.refund_owed))

    def refund_failed(self, payment_hash: str, reason: str) -> None:
        if self.refund_state != "claimed" or self.refund_payment_hash != payment_hash:
            return
        assert self.job_id is not None
        self._record(RefundPaymentFailed(job_id=self.job_id, payment_hash=payment_hash, reason=reason))

    def _claim(self, step: str, now: datetime, lease: timedelta) -> Claim:
        assert self.job_id is not None
        again = self.claim_step == step
        attempt = self.claim_attempt + 1 if again else 1
        execution = self.claim_execution + (1 if self.claim_failed else 0) if again else 1
        self._record(
            StepClaimed(
                job_id=self.job_id, step=step, attempt=attempt, lease_until=now + lease, execution=execution
            )
        )
        return Claim(
            job_id=self.job_id,
            step=step,
            attempt=attempt,
            request=self.request,
            eval_fee_sats=self.eval_amount_sats,
            work_amount_sats=self.work_amount_sats,
            execution=execution,
        )

    # --- state ---------------------------------------------------------------------------------

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case JobCreated():
                self.job_id = event.job_id
                self.state = "awaiting_eval_payment"
                self.request = event.request
                self.eval_payment_hash = event.eval_payment_hash
                self.eval_amount_sats = event.eval_amount_sats
            case EvalPaid():
                self.state = "evaluating"
                self.held_sats = event.amount_sats
            case StepClaimed():
                self.claim_step, self.claim_attempt = event.step, event.attempt
                self.claim_execution, self.claim_failed = event.execution, False
                self.lease_until = event.lease_until
            case StepRetried():
                self.claim_failed = True
            case JobRejected():
                self.state = "rejected"
                self.held_sats = 0
            case WorkInvoiced():
                self.state = "awaiting_work_payment"
                self.held_sats = 0
                self.work_payment_hash = event.work_payment_hash
                self.work_amount_sats = event.work_amount_sats
            case WorkPaid():
                self.state = "executing"
                self.held_sats = event.amount_sats
            case JobCompleted():
                self.state = "complete"
                self.held_sats = 0
                self._owe(event.refund_amount_sats)
            case JobFailed():
                self.state = "failed"
                self.held_sats = 0
                self._owe(event.refund_amount_sats)
            case RefundClaimed():
                self.refund_state = "claimed"
                self.refund_payment_hash = event.payment_hash
            case RefundPaid():
                self.refund_state = "paid"
            case RefundPaymentFailed():
                self.refund_state = "pending"
                self.refund_payment_hash = None

    def _owe(self, amount: int) -> None:
        self.refund_owed = amount
        self.refund_state = "pending" if amount > 0 else "not_applicable"

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "job_id": str(self.job_id) if self.job_id else None,
            "state": self.state,
            "request": self.request,
            "eval_payment_hash": self.eval_payment_hash,
            "eval_amount_sats": self.eval_amount_sats,
            "work_payment_hash": self.work_payment_hash,
            "work_amount_sats": self.work_amount_sats,
            "held_sats": self.held_sats,
            "claim_step": self.claim_step,
            "claim_attempt": self.claim_attempt,
            "claim_execution": self.claim_execution,
            "claim_failed": self.claim_failed,
            "lease_until": self.lease_until.isoformat() if self.lease_until else None,
            "refund_owed": self.refund_owed,
            "refund_state": self.refund_state,
            "refund_payment_hash": self.refund_payment_hash,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        job = cls()
        job.__dict__.update(data)  # a snapshot from before executions were counted: the defaults
        job.job_id = UUID(data["job_id"]) if data["job_id"] else None
        job.lease_until = datetime.fromisoformat(data["lease_until"]) if data["lease_until"] else None
        return job


def no_job() -> Job:
    """The factory of commands on a job that must exist already."""
    raise JobNotFound()
