"""L402, a third way to pay (REFERENCE.md "L402"): per request, no account, no session.

``offer``: the request is priced (the eval fee plus the work quote, on the work model of the
moment, locked in the offer), an invoice issued for it, and a macaroon minted that commits to the
invoice's payment hash, the request's digest, the price and the model. Nothing is recorded: the
signed macaroon is the offer.

``redeem``: the macaroon verified, ``sha256(preimage) == payment hash`` (only the payer learns the
preimage), the invoice paid by the backend's word, then the token claimed on its stream (once:
``domain/l402.py``) and the request run as a session request runs (eval, then work on the offer's
model), under reference ids of the token's. A token answered already is answered its recorded
answer again (the same body): a client whose connection dropped does not lose what it paid for.

The macaroon's expiry bounds the OFFER, not a paid token: past it, a token whose invoice is unpaid
is refused (expired), one whose invoice is paid is honoured (a client who paid just before the
expiry and presents just after keeps what it bought). Nothing but the presentation records the
payment (the watcher and LNbits' webhook know nothing of L402 invoices), so refusing a paid token
for its expiry would keep the sats and never answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import structlog

from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, UseCases, utc_now
from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyUnavailable
from lightning_jobs.adapters.macaroons import L402Macaroons, L402Offer
from lightning_jobs.application.ports import (
    Agent,
    BackendUnavailable,
    InvoiceBackend,
    WorkModel,
    answered_failure,
)
from lightning_jobs.application.pricing import Pricing
from lightning_jobs.domain.errors import InvalidL402Token
from lightning_jobs.domain.l402 import L402Answer, L402Claim, L402Token
from lightning_jobs.projections import INLINE

log = structlog.get_logger(__name__)

TOKENS = AggregateRepository(L402Token, "l402")
SYSTEM = {"actor": "lightning-jobs"}
T = TypeVar("T")


def digest(request: str) -> str:
    return hashlib.sha256(request.encode()).hexdigest()


class L402UseCases(UseCases):
    def __init__(self, pool: asyncpg.Pool, *, appended: Callable[[], None] | None = None) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended))

    async def on_token(self, token_id: UUID, decide: Callable[[Decision, L402Token], T]) -> T:
        return await self.commands.submit(Command(TOKENS, token_id, decide, SYSTEM))


class L402Flow:
    def __init__(
        self,
        tokens: L402UseCases,
        *,
        backend: InvoiceBackend,
        agent: Agent,
        pricing: Pricing,
        macaroons: L402Macaroons,
        lease: timedelta,
    ) -> None:
        self.tokens, self.backend, self.agent, self.pricing = tokens, backend, agent, pricing
        self.macaroons, self.lease = macaroons, lease
        self._runs: set[asyncio.Task[dict[str, Any]]] = set()

    async def offer(self, request: str) -> tuple[str, str]:
        """(macaroon, BOLT11 invoice) of the 402 challenge for this request."""
        model = self.agent.work_model()
        quote = await self.pricing.work_fee(request, model.model)
        amount = self.pricing.eval_fee_sats + quote.amount_sats
        token_id = uuid4()
        invoice = await self.backend.create_invoice(amount, f"lightning-jobs l402 {token_id}")
        offer = L402Offer(
            token_id, invoice.payment_hash, digest(request), amount, model.model, model.provider
        )
        return self.macaroons.mint(offer, utc_now()), invoice.payment_request

    async def redeem(self, macaroon: str, preimage: str, request: str) -> dict[str, Any]:
        offer = self.macaroons.verify(macaroon, utc_now(), check_expiry=False)
        if offer.request_sha256 != digest(request):
            raise InvalidL402Token("Invalid L402 token: it was bought for another request")
        try:
            paid_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
        except ValueError:
            raise InvalidL402Token("Invalid L402 token: the preimage is not hex") from None
        if len(preimage) != 64 or paid_hash != offer.payment_hash:
            raise InvalidL402Token("Invalid L402 token: the preimage is not its invoice's")
        try:
            paid = await self.backend.is_paid(offer.payment_hash)
        except BackendUnavailable:
            # Unknown: neither paid nor expired (the client presents it again).
            log.warning("l402.payment_unknown", token_id=str(offer.token_id), exc_info=True)
            raise InvalidL402Token(
                "Invalid L402 token: its payment could not be checked now; present it again"
            ) from None
        if not paid:
            if offer.expired(utc_now()):
                raise InvalidL402Token("Invalid L402 token: its offer has expired")
            raise InvalidL402Token("Invalid L402 token: its invoice is not paid")
        claim = await self.tokens.on_token(
            offer.token_id,
            lambda d, t: t.claim(
                offer.token_id,
                offer.payment_hash,
                offer.amount_sats,
                self.pricing.eval_fee_sats,
                d.now,
                self.lease,
            ),
        )
        if isinstance(claim, L402Answer):
            return _body(claim.state, claim.answer, claim.amount_sats)
        run = asyncio.create_task(self._run(offer, claim, request))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)
        return await asyncio.shield(run)  # a client that leaves does not leave the claim half-run

    async def _run(self, offer: L402Offer, claim: L402Claim, request: str) -> dict[str, Any]:
        step = "eval"
        try:
            evaluation = await self.agent.evaluate(offer.token_id, request, claim.reference_id(step))
            if not evaluation.accepted:
                state, answer = "rejected", evaluation.reason
            else:
                step = "work"
                model = WorkModel(offer.work_model, offer.work_provider)
                done = await self.agent.work(offer.token_id, request, claim.reference_id(step), model)
                state, answer = "complete", done.result
        except (ExecutionFailed, ExecutionProxyUnavailable) as failure:
            # Not answered: the token is released, to be presented again; a step execution-proxy
            # answered failed is asked under its next reference then (its own is spent).
            message = str(getattr(failure, "message", failure))
            failed = step if isinstance(failure, ExecutionFailed) and answered_failure(failure) else None
            await self.tokens.on_token(offer.token_id, lambda _, t: t.release(claim.attempt, message, failed))
            return {"state": "failed", "errorMessage": message}
        await self.tokens.on_token(offer.token_id, lambda _, t: t.answered(state, answer))
        return _body(state, answer, offer.amount_sats)

    async def close(self) -> None:
        if self._runs:
            await asyncio.wait(set(self._runs))


def _body(state: str, answer: str, amount_sats: int) -> dict[str, Any]:
    """An answered token's response body, the same however often it is presented."""
    key = "result" if state == "complete" else "reason"
    return {"state": state, key: answer, "amountSats": amount_sats}
