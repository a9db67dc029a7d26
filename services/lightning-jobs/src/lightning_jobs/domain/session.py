"""A pre-funded session (seed 002, mode 2: pay once, run many). Event-sourced, stream
``session-<sessionId>``.

    awaiting_payment -> active <-> paused
                        active | paused -> expired (24 h idle)

The deposit invoice paid activates the session (``deposit_paid``: once, however many pollers and
watchers notice it). A request is decided on this stream before any AI call: ``start_request``
reserves what it may cost at most (the eval fee and the work fee quoted for it), and refuses it
(402) when the balance less what running requests hold cannot cover that, so concurrent requests
never overdraw. ``settle_request`` debits what it actually cost (the eval fee, and the work's actual
cost, never more than its quote) and releases the rest. A balance below the minimum (the eval fee:
the least a request costs) pauses the session; a paid top-up resumes it. A session idle for
``idle`` expires, and a balance left is owed back (``SessionExpired.owed_sats``), never kept: it
is claimed for one BOLT11 invoice of exactly that amount and paid at most once, as a job's refund.

Money is integer sats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self
from uuid import UUID

from lf_eventstore import Aggregate, DomainEvent, by_name
from lightning_jobs.domain.errors import (
    InvalidRefundInvoice,
    RefundNotClaimable,
    SessionNotFound,
    TopupRefused,
)

MIN_DEPOSIT_SATS, MAX_DEPOSIT_SATS = 100, 10_000


class SessionOpened(DomainEvent):
    session_id: UUID
    payment_hash: str
    invoice: str
    amount_sats: int
    minimum_balance_sats: int


class DepositPaid(DomainEvent):
    """The deposit (``topup=False``) or a top-up paid: its sats are the session's balance."""

    session_id: UUID
    payment_hash: str
    amount_sats: int
    topup: bool
    at: datetime


class TopupInvoiced(DomainEvent):
    session_id: UUID
    payment_hash: str
    invoice: str
    amount_sats: int


class RequestStarted(DomainEvent):
    session_id: UUID
    request_id: UUID
    reserved_sats: int
    at: datetime
    lease_until: datetime
    """Past it with no settlement, the request's process died: ``release_lapsed`` settles it."""


class RequestSettled(DomainEvent):
    session_id: UUID
    request_id: UUID
    outcome: str  # complete | rejected | failed
    eval_sats: int
    work_sats: int
    reserved_sats: int
    at: datetime


class SessionPaused(DomainEvent):
    session_id: UUID


class SessionExpired(DomainEvent):
    session_id: UUID
    owed_sats: int


class SessionRefundClaimed(DomainEvent):
    """The owed balance claimed for one BOLT11 invoice, before anything is paid."""

    session_id: UUID
    payment_hash: str
    invoice: str
    amount_sats: int


class SessionRefundPaid(DomainEvent):
    session_id: UUID
    payment_hash: str
    amount_sats: int


class SessionRefundFailed(DomainEvent):
    session_id: UUID
    payment_hash: str
    reason: str


SESSION_EVENTS = (
    SessionOpened,
    DepositPaid,
    TopupInvoiced,
    RequestStarted,
    RequestSettled,
    SessionPaused,
    SessionExpired,
    SessionRefundClaimed,
    SessionRefundPaid,
    SessionRefundFailed,
)


class Refusal(StrEnum):
    """Why a request may not start: the route's status (402, 409, 410)."""

    NOT_ACTIVE = "not_active"
    EXPIRED = "expired"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True)
class Started:
    request_id: UUID
    reserved_sats: int


class Session(Aggregate):
    event_types = by_name(*SESSION_EVENTS)

    def __init__(self) -> None:
        super().__init__()
        self.session_id: UUID | None = None
        self.state = "new"
        self.deposit_payment_hash = ""
        self.deposit_amount_sats = 0
        self.minimum_balance_sats = 0
        self.balance_sats = 0
        self.reserved: dict[str, int] = {}  # running requests' reservations, by request id
        self.leases: dict[str, str] = {}  # and until when each is its process's (ISO time)
        self.topup_payment_hash: str | None = None
        self.topup_amount_sats = 0
        self.last_activity_at: datetime | None = None
        self.owed_sats = 0
        self.refund_state = "not_applicable"  # | pending | claimed | paid
        self.refund_payment_hash: str | None = None

    @property
    def available_sats(self) -> int:
        return self.balance_sats - sum(self.reserved.values())

    # --- commands ------------------------------------------------------------------------------

    def open(
        self, session_id: UUID, payment_hash: str, invoice: str, amount_sats: int, minimum_balance_sats: int
    ) -> None:
        if self.session_id is not None:
            return  # the same id twice (a retried commit): the session exists
        self._record(
            SessionOpened(
                session_id=session_id,
                payment_hash=payment_hash,
                invoice=invoice,
                amount_sats=amount_sats,
                minimum_balance_sats=minimum_balance_sats,
            )
        )

    def deposit_paid(self, now: datetime) -> bool:
        """The deposit invoice is paid: activate, once. True when this call activated it."""
        if self.state != "awaiting_payment":
            return False
        assert self.session_id is not None
        self._record(
            DepositPaid(
                session_id=self.session_id,
                payment_hash=self.deposit_payment_hash,
                amount_sats=self.deposit_amount_sats,
                topup=False,
                at=now,
            )
        )
        return True

    def topup_invoiced(self, payment_hash: str, invoice: str, amount_sats: int) -> None:
        if self.state not in ("active", "paused"):
            raise TopupRefused(f"Session is {self.state}: no top-up")
        if self.topup_payment_hash is not None:
            raise TopupRefused("A top-up is already pending")
        assert self.session_id is not None
        self._record(
            TopupInvoiced(
                session_id=self.session_id,
                payment_hash=payment_hash,
                invoice=invoice,
                amount_sats=amount_sats,
            )
        )

    def topup_paid(self, payment_hash: str, now: datetime) -> bool:
        """The pending top-up ``payment_hash`` is paid: credit it once, resume a paused session."""
        if self.topup_payment_hash != payment_hash or self.state not in ("active", "paused"):
            return False
        assert self.session_id is not None
        self._record(
            DepositPaid(
                session_id=self.session_id,
                payment_hash=payment_hash,
                amount_sats=self.topup_amount_sats,
                topup=True,
                at=now,
            )
        )
        return True

    def start_request(
        self,
        request_id: UUID,
        cost_at_most_sats: int,
        now: datetime,
        idle: timedelta,
        lease: timedelta = timedelta(minutes=5),
    ) -> Started | Refusal:
        """Reserve what the request may cost, or say why it may not run. An idle session expires
        here (recorded, and answered ``EXPIRED``: a refusal that raised would record nothing)."""
        self.release_lapsed(now)  # a dead request's reservation holds nothing past its lease
        if self.expire_if_idle(now, idle) or self.state == "expired":
            return Refusal.EXPIRED
        if self.state == "paused":
            return Refusal.INSUFFICIENT
        if self.state != "active":
            return Refusal.NOT_ACTIVE
        if self.available_sats < cost_at_most_sats:
            return Refusal.INSUFFICIENT
        assert self.session_id is not None
        self._record(
            RequestStarted(
                session_id=self.session_id,
                request_id=request_id,
                reserved_sats=cost_at_most_sats,
                at=now,
                lease_until=now + lease,
            )
        )
        return Started(request_id, cost_at_most_sats)

    def settle_request(
        self, request_id: UUID, outcome: str, eval_sats: int, work_sats: int, now: datetime
    ) -> int:
        """Debit what the request cost (never more than it reserved); the balance left."""
        reserved = self.reserved.get(str(request_id))
        if reserved is None:
            return self.balance_sats  # settled already (a repeated report changes nothing)
        assert self.session_id is not None
        eval_sats = min(eval_sats, reserved)
        work_sats = min(work_sats, reserved - eval_sats)
        self._record(
            RequestSettled(
                session_id=self.session_id,
                request_id=request_id,
                outcome=outcome,
                eval_sats=eval_sats,
                work_sats=work_sats,
                reserved_sats=reserved,
                at=now,
            )
        )
        if self.state == "active" and self.balance_sats < self.minimum_balance_sats:
            self._record(SessionPaused(session_id=self.session_id))
        return self.balance_sats

    def release_lapsed(self, now: datetime) -> int:
        """Settle, for nothing, every request whose lease passed unsettled (its process died between
        reserving and settling): the reservation is released, never kept; whatever AI it ran is the
        platform's loss. A late settlement of it changes nothing. How many were released."""
        lapsed = [rid for rid, until in self.leases.items() if datetime.fromisoformat(until) <= now]
        for rid in lapsed:
            self.settle_request(UUID(rid), "failed", 0, 0, now)
        return len(lapsed)

    def expire_if_idle(self, now: datetime, idle: timedelta) -> bool:
        """Expire a session idle for ``idle`` (no running request): its balance is owed back."""
        if self.state not in ("active", "paused") or self.reserved:
            return False
        assert self.last_activity_at is not None and self.session_id is not None
        if now - self.last_activity_at < idle:
            return False
        self._record(SessionExpired(session_id=self.session_id, owed_sats=self.balance_sats))
        return True

    def claim_refund(self, payment_hash: str, invoice: str, amount_sats: int) -> None:
        """Claim an expired session's owed balance for an invoice of exactly that amount (as a
        job's refund: one claim at a time, paid at most once)."""
        if self.state != "expired" or self.refund_state != "pending":
            raise RefundNotClaimable(
                "Nothing to claim: the session has not expired, owes nothing, or its refund is paid"
                " or being paid"
            )
        if amount_sats != self.owed_sats:
            raise InvalidRefundInvoice(f"Invoice must be for exactly {self.owed_sats} sats")
        assert self.session_id is not None
        self._record(
            SessionRefundClaimed(
                session_id=self.session_id,
                payment_hash=payment_hash,
                invoice=invoice,
                amount_sats=amount_sats,
            )
        )

    def refund_paid(self, payment_hash: str) -> None:
        if self.refund_state != "claimed" or self.refund_payment_hash != payment_hash:
            return  # reported already
        assert self.session_id is not None
        self._record(
            SessionRefundPaid(
                session_id=self.session_id, payment_hash=payment_hash, amount_sats=self.owed_sats
            )
        )

    def refund_failed(self, payment_hash: str, reason: str) -> None:
        if self.refund_state != "claimed" or self.refund_payment_hash != payment_hash:
            return
        assert self.session_id is not None
        self._record(
            SessionRefundFailed(session_id=self.session_id, payment_hash=payment_hash, reason=reason)
        )

    # --- state ---------------------------------------------------------------------------------

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case SessionOpened():
                self.session_id = event.session_id
                self.state = "awaiting_payment"
                self.deposit_payment_hash = event.payment_hash
                self.deposit_amount_sats = event.amount_sats
                self.minimum_balance_sats = event.minimum_balance_sats
            case DepositPaid():
                self.balance_sats += event.amount_sats
                if event.topup:
                    self.topup_payment_hash, self.topup_amount_sats = None, 0
                if self.state in ("awaiting_payment", "paused"):
                    self.state = "active"
                self.last_activity_at = event.at
            case TopupInvoiced():
                self.topup_payment_hash, self.topup_amount_sats = event.payment_hash, event.amount_sats
            case RequestStarted():
                self.reserved[str(event.request_id)] = event.reserved_sats
                self.leases[str(event.request_id)] = event.lease_until.isoformat()
                self.last_activity_at = event.at
            case RequestSettled():
                self.reserved.pop(str(event.request_id), None)
                self.leases.pop(str(event.request_id), None)
                self.balance_sats -= event.eval_sats + event.work_sats
                self.last_activity_at = event.at
            case SessionPaused():
                self.state = "paused"
            case SessionExpired():
                self.state = "expired"
                self.balance_sats = 0
                self.owed_sats = event.owed_sats
                self.refund_state = "pending" if event.owed_sats > 0 else "not_applicable"
            case SessionRefundClaimed():
                self.refund_state, self.refund_payment_hash = "claimed", event.payment_hash
            case SessionRefundPaid():
                self.refund_state = "paid"
            case SessionRefundFailed():
                self.refund_state, self.refund_payment_hash = "pending", None

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "session_id": str(self.session_id) if self.session_id else None,
            "state": self.state,
            "deposit_payment_hash": self.deposit_payment_hash,
            "deposit_amount_sats": self.deposit_amount_sats,
            "minimum_balance_sats": self.minimum_balance_sats,
            "balance_sats": self.balance_sats,
            "reserved": dict(self.reserved),
            "leases": dict(self.leases),
            "topup_payment_hash": self.topup_payment_hash,
            "topup_amount_sats": self.topup_amount_sats,
            "last_activity_at": self.last_activity_at.isoformat() if self.last_activity_at else None,
            "owed_sats": self.owed_sats,
            "refund_state": self.refund_state,
            "refund_payment_hash": self.refund_payment_hash,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        session = cls()
        session.__dict__.update(data)
        session.session_id = UUID(data["session_id"]) if data["session_id"] else None
        at = data["last_activity_at"]
        session.last_activity_at = datetime.fromisoformat(at) if at else None
        return session


def no_session() -> Session:
    """The factory of commands on a session that must exist already."""
    raise SessionNotFound()
