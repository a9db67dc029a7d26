"""An L402 token (REFERENCE.md "L402"): one request paid for by one Lightning invoice, presented as
``Authorization: L402 <macaroon>:<preimage>``. Event-sourced, stream ``l402-<tokenId>`` (the token
id is a caveat of its macaroon). The offer itself (the 402) records nothing: the macaroon carries
it, signed; the stream starts when a paid token is first presented.

    (paid token presented) -> claimed -> answered
                              claimed -> (the AI failed, or the claim lapsed) -> claimed again

A token is used once: the first presentation claims it (``L402Paid`` + ``L402Claimed``, one
command on the stream, so concurrent presentations claim it once), the answer settles it
(``L402Answered``), and a later presentation is answered that recorded answer again (``claim``
returns it: the paid answer is not lost to a client whose connection dropped), never run again.
Only the request the token was bought for reaches its stream (the macaroon commits to its digest),
so a recorded answer is only ever that request's. A claim whose AI call failed is released
(``L402Released``) and one whose claimant died lapses after ``lease``: the token can be presented
again. Each step (eval, work) is asked under a reference id of the token's execution of it
(``domain/references.py``): a claim after a lapse asks under the same ones, so a step that did run
is answered from execution-proxy's record, never run twice; a claim after a release that records
which step execution-proxy answered failed (``L402Released.failed_step``) asks that step under the
next one, as a failed reference is answered with its failure for ever.

Money: the price is the offer's (the eval fee plus the work quote, what the request may cost at
most), paid up front as L402 sells a resource; it is held when the token is first presented and
earned when it is answered (the eval fee as eval revenue, the rest as work revenue). Unlike a job,
nothing is refunded: a client who wants the difference back uses a job or a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
from uuid import UUID

from lf_eventstore import Aggregate, DomainEvent, by_name
from lightning_jobs.domain.errors import L402TokenUsed
from lightning_jobs.domain.references import reference_id

STEPS = ("eval", "work")


class L402Paid(DomainEvent):
    token_id: UUID
    payment_hash: str
    amount_sats: int
    eval_fee_sats: int


class L402Claimed(DomainEvent):
    token_id: UUID
    attempt: int
    lease_until: datetime
    eval_execution: int = 1
    """The executions of each step this claim asks for (their reference ids'). Absent from events
    recorded before they were: those asked under each step's first reference."""
    work_execution: int = 1


class L402Released(DomainEvent):
    token_id: UUID
    reason: str
    failed_step: str | None = None
    """The step execution-proxy answered failed (its reference spent: the next claim asks it under
    the next); None when none is known to have (an outage, a timeout), or in an event recorded
    before it was."""


@dataclass(frozen=True)
class L402Answer:
    """The token's recorded answer, for a presentation after it was answered."""

    state: str
    answer: str
    amount_sats: int


@dataclass(frozen=True)
class L402Claim:
    """A claim of the token for one run: its attempt, and the reference id of each step."""

    token_id: UUID
    attempt: int
    executions: dict[str, int]

    def reference_id(self, step: str) -> str:
        return reference_id(f"lightning:l402:{self.token_id}", step, self.executions[step])


class L402Answered(DomainEvent):
    token_id: UUID
    state: str  # complete | rejected
    answer: str
    """The result, or the reason of a rejection."""
    amount_sats: int
    eval_fee_sats: int


L402_EVENTS = (L402Paid, L402Claimed, L402Released, L402Answered)


class L402Token(Aggregate):
    event_types = by_name(*L402_EVENTS)

    def __init__(self) -> None:
        super().__init__()
        self.token_id: UUID | None = None
        self.state = "new"  # | paid (claimable) | claimed | answered
        self.amount_sats = 0
        self.eval_fee_sats = 0
        self.attempt = 0
        self.executions = dict.fromkeys(STEPS, 1)
        self.failed_step: str | None = None
        """The step the last release said failed: the next claim asks it anew."""
        self.lease_until: datetime | None = None
        self.answer: L402Answer | None = None

    def claim(
        self,
        token_id: UUID,
        payment_hash: str,
        amount_sats: int,
        eval_fee_sats: int,
        now: datetime,
        lease: timedelta,
    ) -> L402Claim | L402Answer:
        """Claim the token for one run; its recorded answer once it is answered (nothing recorded);
        ``L402TokenUsed`` while another presentation holds it."""
        if self.state == "answered":
            if self.answer is None:  # restored from a snapshot taken before answers were kept
                raise L402TokenUsed("This L402 token has been used")
            return self.answer
        if self.state == "claimed" and self.lease_until is not None and now < self.lease_until:
            raise L402TokenUsed("This L402 token is being used")
        if self.state == "new":
            self._record(
                L402Paid(
                    token_id=token_id,
                    payment_hash=payment_hash,
                    amount_sats=amount_sats,
                    eval_fee_sats=eval_fee_sats,
                )
            )
        executions = dict(self.executions)
        if self.failed_step is not None:
            executions[self.failed_step] += 1
        self._record(
            L402Claimed(
                token_id=token_id,
                attempt=self.attempt + 1,
                lease_until=now + lease,
                eval_execution=executions["eval"],
                work_execution=executions["work"],
            )
        )
        return L402Claim(token_id, self.attempt, executions)

    def release(self, attempt: int, reason: str, failed_step: str | None = None) -> None:
        if self.state != "claimed" or self.attempt != attempt:
            return  # a later claim holds it, or it was answered meanwhile
        assert self.token_id is not None
        self._record(L402Released(token_id=self.token_id, reason=reason, failed_step=failed_step))

    def answered(self, state: str, answer: str) -> bool:
        """Settle the token; False when it was settled already (a lapsed claimant's late report)."""
        if self.state != "claimed":
            return False
        assert self.token_id is not None
        self._record(
            L402Answered(
                token_id=self.token_id,
                state=state,
                answer=answer,
                amount_sats=self.amount_sats,
                eval_fee_sats=self.eval_fee_sats,
            )
        )
        return True

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case L402Paid():
                self.token_id = event.token_id
                self.state = "paid"
                self.amount_sats, self.eval_fee_sats = event.amount_sats, event.eval_fee_sats
            case L402Claimed():
                self.state, self.attempt, self.lease_until = "claimed", event.attempt, event.lease_until
                self.executions = {"eval": event.eval_execution, "work": event.work_execution}
                self.failed_step = None
            case L402Released():
                self.state, self.lease_until = "paid", None
                self.failed_step = event.failed_step
            case L402Answered():
                self.state = "answered"
                self.answer = L402Answer(event.state, event.answer, event.amount_sats)

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "token_id": str(self.token_id) if self.token_id else None,
            "state": self.state,
            "amount_sats": self.amount_sats,
            "eval_fee_sats": self.eval_fee_sats,
            "attempt": self.attempt,
            "executions": self.executions,
            "failed_step": self.failed_step,
            "lease_until": self.lease_until.isoformat() if self.lease_until else None,
            "answer": vars(self.answer) if self.answer else None,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        token = cls()
        token.__dict__.update(data)
        token.token_id = UUID(data["token_id"]) if data["token_id"] else None
        token.lease_until = datetime.fromisoformat(data["lease_until"]) if data["lease_until"] else None
        token.answer = L402Answer(**data["answer"]) if data.get("answer") else None
        return token
