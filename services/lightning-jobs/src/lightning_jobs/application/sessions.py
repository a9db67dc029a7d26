"""Sessions' commands and flow (seed 002, mode 2): every decision one command on the session's
stream (``CommandRunner.submit``), decided purely by the ``Session`` aggregate; the invoices, the
price oracle and the AI are called outside any transaction, between commands.

A request is reserved on the stream before its AI calls (``start_request``) and settled after them
(``settle_request``): concurrent requests queue on the stream's lock, each sees what the others
hold, so none overdraws. Its eval and work go through the same ``Agent`` port as jobs', under
reference ids of the request's (a repeated call is answered from execution-proxy's record).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import structlog

from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, UseCases, utc_now
from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyUnavailable
from lightning_jobs.adapters.macaroons import SessionMacaroons
from lightning_jobs.application.ports import (
    Agent,
    BackendRefused,
    BackendUnavailable,
    InvoiceBackend,
    RefundInvoiceChecker,
    WorkModel,
)
from lightning_jobs.application.pricing import Pricing
from lightning_jobs.domain.errors import (
    InsufficientBalance,
    RefundPaymentFailed,
    SessionExpiredError,
    SessionNotActive,
    SessionNotFound,
)
from lightning_jobs.domain.session import Refusal, Session, Started, no_session
from lightning_jobs.projections import INLINE

log = structlog.get_logger(__name__)

SESSIONS = AggregateRepository(Session, "session")
SYSTEM = {"actor": "lightning-jobs"}
T = TypeVar("T")


class SessionUseCases(UseCases):
    def __init__(self, pool: asyncpg.Pool, *, appended: Callable[[], None] | None = None) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended))

    async def on_session(
        self,
        session_id: UUID,
        decide: Callable[[Decision, Session], T],
        metadata: dict[str, Any],
        *,
        new: bool = False,
    ) -> T:
        return await self.commands.submit(
            Command(SESSIONS, session_id, decide, metadata, new=None if new else no_session)
        )


class SessionQueries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def session(self, session_id: UUID) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM sessions WHERE session_id = $1", session_id)
        return dict(row) if row is not None else None

    async def pending(self, idle_seconds: float, limit: int) -> list[UUID]:
        """Sessions waiting on an invoice, and live ones idle long enough to expire."""
        rows = await self.pool.fetch(
            "SELECT session_id FROM sessions"
            " WHERE state = 'awaiting_payment' OR topup_payment_hash IS NOT NULL"
            " OR (state IN ('active', 'paused') AND last_activity_at <= now() - make_interval(secs => $1))"
            " OR (open_requests > 0 AND leases_until <= now())"
            " ORDER BY updated_at LIMIT $2",
            idle_seconds,
            limit,
        )
        return [row["session_id"] for row in rows]

    async def paid_by(self, payment_hash: str) -> UUID | None:
        """The session whose deposit or pending top-up invoice has this payment hash."""
        return await self.pool.fetchval(
            "SELECT session_id FROM sessions WHERE deposit_payment_hash = $1"
            " UNION ALL SELECT session_id FROM sessions WHERE topup_payment_hash = $1 LIMIT 1",
            payment_hash,
        )

    async def unsettled_refunds(self, older_than_seconds: float, limit: int) -> list[tuple[UUID, str]]:
        rows = await self.pool.fetch(
            "SELECT session_id, refund_payment_hash FROM sessions"
            " WHERE refund_claimed_at < now() - make_interval(secs => $1)"
            " ORDER BY refund_claimed_at LIMIT $2",
            older_than_seconds,
            limit,
        )
        return [(row["session_id"], row["refund_payment_hash"]) for row in rows]


class SessionFlow:
    def __init__(
        self,
        sessions: SessionUseCases,
        queries: SessionQueries,
        *,
        backend: InvoiceBackend,
        agent: Agent,
        pricing: Pricing,
        macaroons: SessionMacaroons,
        idle: timedelta,
        refund_checker: RefundInvoiceChecker,
        refund_recheck_seconds: float = 60.0,
        lease: timedelta = timedelta(minutes=5),
        watch_batch: int = 100,
    ) -> None:
        self.lease = lease
        self.refund_checker, self.refund_recheck_seconds = refund_checker, refund_recheck_seconds
        self.sessions, self.queries = sessions, queries
        self.backend, self.agent, self.pricing = backend, agent, pricing
        self.macaroons, self.idle, self.watch_batch = macaroons, idle, watch_batch
        self._requests: set[asyncio.Task[dict[str, Any]]] = set()

    @property
    def minimum_balance_sats(self) -> int:
        # The least any request costs (a rejected one pays its eval fee): below it nothing can run.
        return self.pricing.eval_fee_sats

    async def open(self, amount_sats: int, *, metadata: dict[str, Any]) -> dict[str, Any]:
        """The deposit invoice first, then the session recorded with it (never one without)."""
        session_id = uuid4()
        invoice = await self.backend.create_invoice(amount_sats, f"lightning-jobs session {session_id}")
        await self.sessions.on_session(
            session_id,
            lambda _, s: s.open(
                session_id,
                invoice.payment_hash,
                invoice.payment_request,
                invoice.amount_sats,
                self.minimum_balance_sats,
            ),
            metadata,
            new=True,
        )
        return await self._row(session_id)

    async def advance(self, session_id: UUID) -> dict[str, Any]:
        """Credit what has been paid (the deposit: activation; a top-up: resumes a paused session),
        release the reservations of requests whose process died, expire an idle one; its row
        afterwards."""
        row = await self._row(session_id)
        try:
            if row["state"] == "awaiting_payment" and await self.backend.is_paid(row["deposit_payment_hash"]):
                await self.sessions.on_session(session_id, lambda d, s: s.deposit_paid(d.now), SYSTEM)
            topup = row["topup_payment_hash"]
            if topup is not None and await self.backend.is_paid(topup):
                await self.sessions.on_session(session_id, lambda d, s: s.topup_paid(topup, d.now), SYSTEM)
        except BackendUnavailable:
            log.warning("session.payment_unknown", session_id=str(session_id), exc_info=True)
        if row["state"] in ("active", "paused"):
            await self.sessions.on_session(
                session_id, lambda d, s: (s.release_lapsed(d.now), s.expire_if_idle(d.now, self.idle)), SYSTEM
            )
        return await self._row(session_id)

    async def topup(self, session_id: UUID, amount_sats: int, *, metadata: dict[str, Any]) -> dict[str, Any]:
        await self._row(session_id)  # 404 before an invoice is issued for nothing
        invoice = await self.backend.create_invoice(amount_sats, f"lightning-jobs topup {session_id}")
        await self.sessions.on_session(
            session_id,
            lambda _, s: s.topup_invoiced(invoice.payment_hash, invoice.payment_request, invoice.amount_sats),
            metadata,
        )
        return await self._row(session_id)

    async def request(self, session_id: UUID, request: str, *, metadata: dict[str, Any]) -> dict[str, Any]:
        """Reserve, run, settle. The run is a task of the flow's own: a client that leaves does not
        leave its reservation unsettled."""
        await self._row(session_id)
        model = self.agent.work_model()  # one request: priced and run on the same model
        quote = await self.pricing.work_fee(request, model.model)
        at_most = self.pricing.eval_fee_sats + quote.amount_sats
        request_id = uuid4()
        started = await self.sessions.on_session(
            session_id,
            lambda d, s: s.start_request(request_id, at_most, d.now, self.idle, self.lease),
            metadata,
        )
        match started:
            case Refusal.EXPIRED:
                raise SessionExpiredError()
            case Refusal.NOT_ACTIVE:
                raise SessionNotActive("Session not active: its deposit is not paid yet")
            case Refusal.INSUFFICIENT:
                raise InsufficientBalance(f"Insufficient balance: this request may cost up to {at_most} sats")
        assert isinstance(started, Started)
        run = asyncio.create_task(self._run(session_id, request_id, request, quote, model))
        self._requests.add(run)
        run.add_done_callback(self._requests.discard)
        return await asyncio.shield(run)

    async def _run(
        self, session_id: UUID, request_id: UUID, request: str, quote: Any, model: WorkModel
    ) -> dict[str, Any]:
        eval_sats, work_sats = 0, 0
        answer: dict[str, Any] = {"requestId": str(request_id)}
        # The request's own references: it is asked once and never retried (a failed one is settled,
        # and the client's retry is a new request, with new references), so no failed reference is
        # ever asked again.
        reference = f"lightning:session:{session_id}:{request_id}"
        try:
            evaluation = await self.agent.evaluate(request_id, request, f"{reference}:eval")
            eval_sats = self.pricing.eval_fee_sats
            if not evaluation.accepted:
                answer.update(state="rejected", reason=evaluation.reason)
            else:
                done = await self.agent.work(request_id, request, f"{reference}:work", model)
                cost = self.pricing.actual_cost(quote, done.input_tokens, done.output_tokens)
                work_sats = min(cost.actual_amount_sats, quote.amount_sats)  # never more than quoted
                answer.update(state="complete", result=done.result)
        except (ExecutionFailed, ExecutionProxyUnavailable) as failure:
            # Only what was done is paid for: a failed evaluation costs nothing, a failed work step
            # costs the evaluation.
            log.warning("session.request_failed", session_id=str(session_id), exc_info=True)
            answer.update(state="failed", errorMessage=str(getattr(failure, "message", failure)))
        except Exception:
            # Settled all the same: a reservation left behind would hold the balance for ever.
            log.exception("session.request_crashed", session_id=str(session_id))
            answer.update(state="failed", errorMessage="internal error")
        balance = await self.sessions.on_session(
            session_id,
            lambda d, s: s.settle_request(request_id, answer["state"], eval_sats, work_sats, d.now),
            SYSTEM,
        )
        answer.update(
            debitedSats=eval_sats + work_sats,
            balanceRemaining=balance,
            cost={
                "evalSats": eval_sats,
                "workSats": work_sats,
                "totalSats": eval_sats + work_sats,
                "btcPriceUsd": float(quote.btc_price_usd),
            },
        )
        return answer

    def verify(self, macaroon: str | None, session_id: UUID, *, check_expiry: bool = True) -> None:
        self.macaroons.verify(macaroon, session_id, utc_now(), check_expiry=check_expiry)

    async def claim_refund(
        self, session_id: UUID, payment_request: str, *, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """An expired session's owed balance, claimed and paid as a job's refund (``JobFlow.claim_refund``):
        the claim is a command before the payment (concurrent claims pay once), a refused payment
        releases it, an unknown outcome keeps it until the watcher has asked the backend."""
        invoice = self.refund_checker.check(payment_request)
        await self.sessions.on_session(
            session_id,
            lambda _, s: s.claim_refund(invoice.payment_hash, payment_request, invoice.amount_sats),
            metadata,
        )
        try:
            await self.backend.pay(payment_request, invoice.amount_sats)
        except BackendRefused as refused:
            reason = str(refused)
            await self.sessions.on_session(
                session_id, lambda _, s: s.refund_failed(invoice.payment_hash, reason), metadata
            )
            raise RefundPaymentFailed(f"Lightning payment failed: {refused}") from refused
        except Exception as unknown:
            log.error("session_refund.outcome_unknown", session_id=str(session_id))
            raise RefundPaymentFailed("Lightning payment outcome unknown; it will be checked") from unknown
        await self.sessions.on_session(session_id, lambda _, s: s.refund_paid(invoice.payment_hash), metadata)
        return {"refundAmountSats": invoice.amount_sats, "paymentHash": invoice.payment_hash}

    async def settle_unsettled_refunds(self) -> None:
        """A claim left neither paid nor released is settled by what the backend says became of its
        payment, never by paying again."""
        for session_id, payment_hash in await self.queries.unsettled_refunds(
            self.refund_recheck_seconds, self.watch_batch
        ):
            try:
                status = await self.backend.payment_status(payment_hash)
            except BackendUnavailable:
                continue
            if status == "paid":
                await self.sessions.on_session(
                    session_id, lambda _, s, h=payment_hash: s.refund_paid(h), SYSTEM
                )
            elif status == "failed":
                await self.sessions.on_session(
                    session_id, lambda _, s, h=payment_hash: s.refund_failed(h, "not paid (checked)"), SYSTEM
                )

    def macaroon(self, session_id: UUID) -> str:
        return self.macaroons.mint(session_id, utc_now())

    async def watch(self) -> None:
        """One pass of the session watcher: deposits and top-ups credited, idle sessions expired,
        with nobody polling."""
        for session_id in await self.queries.pending(self.idle.total_seconds(), self.watch_batch):
            try:
                await self.advance(session_id)
            except Exception:
                log.warning("session.watch_failed", session_id=str(session_id), exc_info=True)
        await self.settle_unsettled_refunds()

    async def close(self) -> None:
        if self._requests:
            await asyncio.wait(set(self._requests))

    async def _row(self, session_id: UUID) -> dict[str, Any]:
        row = await self.queries.session(session_id)
        if row is None:
            raise SessionNotFound()
        return row
