"""The job flow: what moves a job on, whoever asks (a ``GET /api/jobs/{id}``, the invoice watcher,
on any replica).

``advance`` looks at the job's row; a job waiting on an invoice asks the backend whether it is paid
(outside any transaction), and a paid one is claimed by a command on its stream (``eval_paid``,
``work_paid``); a step whose claim has lapsed is claimed again (``reclaim``). Only the caller whose
command claimed the step runs it: the AI call, the pricing and the work invoice all happen after
the claim has committed and before the report, in no transaction. So twenty pollers and the
watcher noticing one payment at once run its step once.

A step runs in a task of the flow's own, not of the request that claimed it: a client that leaves
does not cut a paid step short. An outage (execution-proxy or the Lightning backend unreachable)
leaves the claim to lapse, and the step is claimed and run again after ``lease`` (an outage delays
a job, it never fails it); a step the AI refuses fails the job, and what was paid for it is owed back.
A transient failure execution-proxy answered (the provider's 5xx, a 429) is recorded
(``StepRetried``) and the step claimed again after ``lease`` under a new reference id (a failed
reference is answered with its failure for ever), up to ``MAX_TRANSIENT_ATTEMPTS`` claims; one it
did not answer (a timeout, a broken connection: the execution may run on) keeps the reference.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import structlog

from lf_eventstore import utc_now
from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyUnavailable
from lightning_jobs.application.jobs import JobUseCases
from lightning_jobs.application.ports import (
    Agent,
    BackendRefused,
    BackendUnavailable,
    InvoiceBackend,
    RefundInvoiceChecker,
    WorkModel,
    answered_failure,
)
from lightning_jobs.application.pricing import Pricing, WorkQuote
from lightning_jobs.application.queries import JobQueries
from lightning_jobs.domain.errors import JobNotFound, RefundPaymentFailed
from lightning_jobs.domain.job import EVAL, Claim, WorkQuoted

log = structlog.get_logger(__name__)

MAX_TRANSIENT_ATTEMPTS = 3
"""Claims of one step that may end in a transient AI failure before the job fails."""

SYSTEM = {"actor": "lightning-jobs"}


class JobFlow:
    def __init__(
        self,
        jobs: JobUseCases,
        queries: JobQueries,
        *,
        backend: InvoiceBackend,
        agent: Agent,
        pricing: Pricing,
        refund_checker: RefundInvoiceChecker,
        watch_batch: int = 100,
        watch_concurrency: int = 8,
        refund_recheck_seconds: float = 60.0,
    ) -> None:
        self.jobs, self.queries = jobs, queries
        self.backend, self.agent, self.pricing = backend, agent, pricing
        self.refund_checker = refund_checker
        self.watch_batch, self.watch_concurrency = watch_batch, watch_concurrency
        self.refund_recheck_seconds = refund_recheck_seconds
        self._steps: set[asyncio.Task[None]] = set()

    # --- jobs ------------------------------------------------------------------------------------

    async def create(self, request: str, *, metadata: dict[str, Any]) -> dict[str, Any]:
        """Issue the eval invoice, then record the job with it (the invoice first: a job is never
        recorded without one; an invoice whose job was never recorded is never paid for anything)."""
        job_id = uuid4()
        invoice = await self.backend.create_invoice(
            self.pricing.eval_fee_sats, f"lightning-jobs eval {job_id}"
        )
        await self.jobs.create(
            job_id,
            request,
            invoice.payment_hash,
            invoice.payment_request,
            invoice.amount_sats,
            metadata=metadata,
        )
        job = await self.queries.job(job_id)
        assert job is not None  # inline: readable once the command has committed
        return job

    async def advance(self, job_id: UUID, *, wait: bool = True) -> dict[str, Any]:
        """Move the job on as far as its payments allow; its row afterwards. ``wait=False`` returns
        once a step is claimed, not run (the step goes on in the flow's task): for a caller that must
        answer quickly (LNbits' webhook), never for one that shows the job."""
        job = await self.queries.job(job_id)
        if job is None:
            raise JobNotFound()
        claim = await self._claim(job)
        if claim is None:
            if job["state"].startswith("awaiting"):  # another caller may have claimed it meanwhile
                return await self.queries.job(job_id) or job
            return job
        step = asyncio.create_task(self._run(claim), name=f"job-step:{job_id}:{claim.step}")
        self._steps.add(step)
        step.add_done_callback(self._steps.discard)
        if wait:
            await asyncio.shield(step)
        return await self.queries.job(job_id) or job

    async def _claim(self, job: dict[str, Any]) -> Claim | None:
        job_id, state = job["job_id"], job["state"]
        try:
            if state == "awaiting_eval_payment" and await self.backend.is_paid(job["eval_payment_hash"]):
                return await self.jobs.eval_paid(job_id, metadata=SYSTEM)
            if state == "awaiting_work_payment" and await self.backend.is_paid(job["work_payment_hash"]):
                return await self.jobs.work_paid(job_id, metadata=SYSTEM)
        except BackendUnavailable:
            log.warning("job.payment_unknown", job_id=str(job_id), exc_info=True)
            return None
        lease_until = job["step_lease_until"]
        if state in ("evaluating", "executing") and lease_until is not None and lease_until <= utc_now():
            return await self.jobs.reclaim(job_id, metadata=SYSTEM)  # decided on the database's clock
        return None

    async def _run(self, claim: Claim) -> None:
        try:
            if claim.step == EVAL:
                await self._evaluate(claim)
            else:
                await self._work(claim)
        except (ExecutionProxyUnavailable, BackendUnavailable):
            # Nothing done: the claim lapses and the step is claimed again after its lease.
            log.warning("job.step_delayed", job_id=str(claim.job_id), step=claim.step, exc_info=True)
        except ExecutionFailed as failure:
            if failure.transient and claim.attempt < MAX_TRANSIENT_ATTEMPTS:
                log.warning("job.step_retried", job_id=str(claim.job_id), step=claim.step, code=failure.code)
                if answered_failure(failure):
                    await self.jobs.retried(
                        claim.job_id,
                        claim.step,
                        claim.attempt,
                        failure.code,
                        failure.message,
                        metadata=SYSTEM,
                    )
                return
            await self.jobs.failed(claim.job_id, claim.step, failure.message, metadata=SYSTEM)
        except Exception:
            log.exception("job.step_crashed", job_id=str(claim.job_id), step=claim.step)

    async def _evaluate(self, claim: Claim) -> None:
        evaluation = await self.agent.evaluate(claim.job_id, claim.request, claim.reference_id)
        if not evaluation.accepted:
            await self.jobs.rejected(claim.job_id, evaluation.reason, metadata=SYSTEM)
            return
        model = self.agent.work_model()  # locked with the price: the work runs on it, come what may
        quote = await self.pricing.work_fee(claim.request, model.model)
        invoice = await self.backend.create_invoice(quote.amount_sats, f"lightning-jobs work {claim.job_id}")
        await self.jobs.work_invoiced(
            claim.job_id,
            evaluation.reason,
            WorkQuoted(
                payment_hash=invoice.payment_hash,
                invoice=invoice.payment_request,
                amount_sats=invoice.amount_sats,
                estimated_cost_usd=str(quote.estimated_cost_usd),
                margin_pct=str(quote.margin_pct),
                btc_price_usd=str(quote.btc_price_usd),
                btc_price_source=quote.btc_price_source,
                work_model=model.model,
                work_provider=model.provider,
            ),
            metadata=SYSTEM,
        )

    async def _work(self, claim: Claim) -> None:
        job = await self.queries.job(claim.job_id)
        assert job is not None and job["pricing"] is not None
        model = work_model_of(job) or self.agent.work_model()
        done = await self.agent.work(claim.job_id, claim.request, claim.reference_id, model)
        cost = self.pricing.actual_cost(quote_of(job, model), done.input_tokens, done.output_tokens)
        await self.jobs.completed(
            claim.job_id,
            result=done.result,
            input_tokens=done.input_tokens,
            output_tokens=done.output_tokens,
            actual_cost_usd=str(cost.actual_cost_usd),
            actual_charge_usd=str(cost.actual_charge_usd),
            actual_amount_sats=cost.actual_amount_sats,
            metadata=SYSTEM,
        )

    # --- the watcher -------------------------------------------------------------------------------

    async def watch(self) -> None:
        """One pass of the invoice watcher (``BackgroundWork.every``): every job waiting on a payment
        or on a lapsed step is advanced, a few at once, so jobs move on with nobody polling."""
        gate = asyncio.Semaphore(self.watch_concurrency)

        async def advance(job_id: UUID) -> None:
            async with gate:
                try:
                    await self.advance(job_id)
                except Exception:
                    log.warning("job.watch_failed", job_id=str(job_id), exc_info=True)

        await asyncio.gather(*(advance(job_id) for job_id in await self.queries.pending(self.watch_batch)))
        await self.settle_unsettled_refunds()

    async def settle_unsettled_refunds(self) -> None:
        """A refund claim left neither paid nor released (its claimant died around the payment) is
        settled by what the backend says became of the payment, never by paying again: paid is
        recorded paid, failed releases the claim (claimable again), pending waits."""
        for job_id, payment_hash in await self.queries.unsettled_refunds(
            self.refund_recheck_seconds, self.watch_batch
        ):
            try:
                status = await self.backend.payment_status(payment_hash)
            except BackendUnavailable:
                log.warning("refund.status_unknown", job_id=str(job_id), exc_info=True)
                continue
            if status == "paid":
                await self.jobs.refund_paid(job_id, payment_hash, metadata=SYSTEM)
            elif status == "failed":
                await self.jobs.refund_failed(
                    job_id, payment_hash, "not paid (checked with the backend)", metadata=SYSTEM
                )

    async def close(self) -> None:
        """Let running steps finish (a shutdown waits for them, bounded by the app's deadline)."""
        if self._steps:
            await asyncio.wait(set(self._steps))

    # --- refunds -----------------------------------------------------------------------------------

    async def claim_refund(
        self, job_id: UUID, payment_request: str, *, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """Claim the job's refund for this invoice (refused while another claim holds it or once it
        is paid), then pay it; a payment the backend refused releases the claim."""
        invoice = self.refund_checker.check(payment_request)
        await self.jobs.claim_refund(
            job_id, invoice.payment_hash, payment_request, invoice.amount_sats, metadata=metadata
        )
        try:
            await self.backend.pay(payment_request, invoice.amount_sats)
        except BackendRefused as refused:
            await self.jobs.refund_failed(job_id, invoice.payment_hash, str(refused), metadata=metadata)
            raise RefundPaymentFailed(f"Lightning payment failed: {refused}") from refused
        except Exception as unknown:
            # Whether it left the node is unknown: the claim stays, so nobody pays it again before
            # the backend has been asked (``settle_unsettled_refunds``, after REFUND_RECHECK_SECONDS).
            log.error("refund.outcome_unknown", job_id=str(job_id), payment_hash=invoice.payment_hash)
            raise RefundPaymentFailed("Lightning payment outcome unknown; it will be checked") from unknown
        await self.jobs.refund_paid(job_id, invoice.payment_hash, metadata=metadata)
        return {"refundAmountSats": invoice.amount_sats, "paymentHash": invoice.payment_hash}


def work_model_of(job: dict[str, Any]) -> WorkModel | None:
    """The model the job's work invoice was priced on; None for a job priced before it was
    recorded (its work then runs on the settings' ``WORK_MODEL``: its events are never changed)."""
    pricing = job["pricing"] or {}
    if not pricing.get("workModel"):
        return None
    return WorkModel(pricing["workModel"], pricing["workProvider"])


def quote_of(job: dict[str, Any], model: WorkModel) -> WorkQuote:
    """The work invoice's quote as the job row keeps it (exact decimals, from their strings), on
    the model its work runs on."""
    pricing = job["pricing"]
    return WorkQuote(
        amount_sats=job["work_amount_sats"],
        estimated_cost_usd=Decimal(pricing["estimatedCostUsd"]),
        margin_pct=Decimal(pricing["marginPct"]),
        btc_price_usd=Decimal(pricing["btcPriceUsd"]),
        btc_price_source=pricing.get("btcPriceSource", "oracle"),
        model=model.model,
    )
