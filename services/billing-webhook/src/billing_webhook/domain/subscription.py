"""A subscription: its newest known state, and the plan's credits once per paid renewal invoice.

Deliveries arrive in any order, so a state replaces the known one only if LemonSqueezy stamped it
later (``updated_at``); the owner, once known, is kept. A renewal invoice is credited once with
the credits of the subscription's plan (its variant's credit pack); one that arrives before the
subscription's owner or plan is known waits for them. A refunded renewal takes its credits back as a
refunded order does (``credits_to_take_back``, cumulative); a refund that arrives before its renewal
was credited is applied right after it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Self
from uuid import UUID

from billing_webhook.domain import errors
from billing_webhook.domain.events import (
    InvoiceAwaitingSubscription,
    InvoiceRefundAwaitingPayment,
    SubscriptionChanged,
    SubscriptionInvoicePaid,
    SubscriptionInvoiceRefunded,
)
from billing_webhook.domain.order import credits_to_take_back
from billing_webhook.domain.outcome import Outcome
from lf_eventstore import Aggregate, by_name


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    variant_id: str
    product_id: str | None
    status: str
    cancelled: bool
    renews_at: datetime | None
    ends_at: datetime | None
    state_at: datetime


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_id: str
    amount_cents: int
    currency: str
    test_mode: bool


class Subscription(Aggregate):
    event_types = by_name(
        SubscriptionChanged,
        SubscriptionInvoicePaid,
        InvoiceAwaitingSubscription,
        SubscriptionInvoiceRefunded,
        InvoiceRefundAwaitingPayment,
    )

    def __init__(self) -> None:
        super().__init__()
        self.subscription_id: str | None = None
        self.lenser_id: UUID | None = None
        self.state: SubscriptionState | None = None
        self.invoices_paid: set[str] = set()
        self.invoices_awaiting: dict[str, Invoice] = {}
        self.invoice_credits: dict[str, int] = {}  # what each credited invoice granted
        self.invoice_refunded: dict[str, int] = {}  # credits taken back so far, per invoice
        self.refunds_awaiting: dict[str, tuple[int, int]] = {}  # (refunded cents, total cents)

    @property
    def plan(self) -> str | None:
        """The variant whose credit pack a renewal grants."""
        return self.state.variant_id if self.state else None

    @property
    def identified(self) -> bool:
        return self.lenser_id is not None and self.state is not None

    # --- commands -------------------------------------------------------------------------

    def observe(
        self,
        subscription_id: str,
        state: SubscriptionState,
        *,
        lenser_id: UUID | None,
        trigger: str,
        at: datetime,
    ) -> Outcome:
        newer = self.state is None or state.state_at > self.state.state_at
        owner = self.lenser_id or lenser_id
        if not newer and owner == self.lenser_id:
            return Outcome.unchanged(f"subscription {subscription_id}: a newer state is already known")
        current = state if newer else self.state
        assert current is not None
        self._record(
            SubscriptionChanged(
                subscription_id=subscription_id, lenser_id=owner, trigger=trigger, at=at, **asdict(current)
            )
        )
        return Outcome.applied(f"subscription {subscription_id} is {current.status}")

    def pay_invoice(
        self, subscription_id: str, invoice: Invoice, *, credits: int | None, at: datetime
    ) -> Outcome:
        """``credits``: what the plan grants per renewal, or None while the plan is unknown."""
        if invoice.invoice_id in self.invoices_paid:
            return Outcome.unchanged(f"invoice {invoice.invoice_id} was already credited")
        if not self.identified or credits is None:
            if invoice.invoice_id not in self.invoices_awaiting:
                self._record(
                    InvoiceAwaitingSubscription(subscription_id=subscription_id, **asdict(invoice), at=at)
                )
            return Outcome.deferred(f"invoice {invoice.invoice_id} waits for subscription {subscription_id}")
        self._credit(subscription_id, invoice, credits, at)
        return Outcome.applied(f"invoice {invoice.invoice_id}: {credits} credits")

    def pay_awaiting_invoices(self, credits: int, *, at: datetime) -> int:
        """Credit the invoices that waited for this subscription; returns how many."""
        waiting = list(self.invoices_awaiting.values()) if self.identified else []
        for invoice in waiting:
            assert self.subscription_id is not None
            self._credit(self.subscription_id, invoice, credits, at)
        return len(waiting)

    def refund_invoice(
        self,
        subscription_id: str,
        invoice_id: str,
        refunded_amount_cents: int,
        total_cents: int,
        *,
        at: datetime,
    ) -> Outcome:
        """Take back a refunded renewal's credits, up to the cumulative refund; repeats change nothing."""
        if refunded_amount_cents < 0 or total_cents < 0:
            raise errors.InvalidAmount("amounts are never negative")
        credits = self.invoice_credits.get(invoice_id)
        if credits is None:
            remembered = self.refunds_awaiting.get(invoice_id, (-1, 0))[0]
            if refunded_amount_cents > remembered:
                self._record(
                    InvoiceRefundAwaitingPayment(
                        subscription_id=subscription_id,
                        invoice_id=invoice_id,
                        refunded_amount_cents=refunded_amount_cents,
                        total_cents=total_cents,
                        at=at,
                    )
                )
            return Outcome.deferred(f"invoice {invoice_id} is not credited yet: the refund waits for it")
        target = credits_to_take_back(credits, refunded_amount_cents, total_cents)
        taken = self.invoice_refunded.get(invoice_id, 0)
        if target <= taken:
            return Outcome.unchanged(f"invoice {invoice_id}: {taken} credits already taken back")
        assert self.lenser_id is not None
        self._record(
            SubscriptionInvoiceRefunded(
                subscription_id=subscription_id,
                invoice_id=invoice_id,
                lenser_id=self.lenser_id,
                credits_refunded_total=target,
                credits_refunded=target - taken,
                refunded_amount_cents=refunded_amount_cents,
                at=at,
            )
        )
        return Outcome.applied(f"invoice {invoice_id}: {target} of {credits} credits taken back in all")

    def _credit(self, subscription_id: str, invoice: Invoice, credits: int, at: datetime) -> None:
        if credits <= 0:
            raise errors.InvalidAmount("a plan grants a positive number of credits")
        assert self.lenser_id is not None and self.plan is not None
        self._record(
            SubscriptionInvoicePaid(
                subscription_id=subscription_id,
                lenser_id=self.lenser_id,
                variant_id=self.plan,
                credits=credits,
                at=at,
                **asdict(invoice),
            )
        )
        if (refund := self.refunds_awaiting.get(invoice.invoice_id)) is not None:
            self.refund_invoice(subscription_id, invoice.invoice_id, *refund, at=at)

    # --- state ----------------------------------------------------------------------------

    def _apply(self, event: Any) -> None:
        self.subscription_id = event.subscription_id
        match event:
            case SubscriptionChanged():
                self.lenser_id = event.lenser_id
                self.state = SubscriptionState(
                    **event.model_dump(include=set(SubscriptionState.__dataclass_fields__))
                )
            case SubscriptionInvoicePaid():
                self.invoices_paid.add(event.invoice_id)
                self.invoice_credits[event.invoice_id] = event.credits
                self.invoices_awaiting.pop(event.invoice_id, None)
            case SubscriptionInvoiceRefunded():
                self.invoice_refunded[event.invoice_id] = event.credits_refunded_total
                self.refunds_awaiting.pop(event.invoice_id, None)
            case InvoiceRefundAwaitingPayment():
                self.refunds_awaiting[event.invoice_id] = (event.refunded_amount_cents, event.total_cents)
            case InvoiceAwaitingSubscription():
                self.invoices_awaiting[event.invoice_id] = Invoice(
                    **event.model_dump(include=set(Invoice.__dataclass_fields__))
                )

    def to_snapshot(self) -> dict[str, Any]:
        state = asdict(self.state) if self.state else None
        if state:
            for name in ("renews_at", "ends_at", "state_at"):
                state[name] = state[name].isoformat() if state[name] else None
        return {
            "subscription_id": self.subscription_id,
            "lenser_id": str(self.lenser_id) if self.lenser_id else None,
            "state": state,
            "invoices_paid": sorted(self.invoices_paid),
            "invoices_awaiting": [asdict(i) for i in self.invoices_awaiting.values()],
            "invoice_credits": self.invoice_credits,
            "invoice_refunded": self.invoice_refunded,
            "refunds_awaiting": {key: list(value) for key, value in self.refunds_awaiting.items()},
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        subscription = cls()
        subscription.subscription_id = data["subscription_id"]
        subscription.lenser_id = UUID(data["lenser_id"]) if data["lenser_id"] else None
        if (state := data["state"]) is not None:
            for name in ("renews_at", "ends_at", "state_at"):
                state[name] = datetime.fromisoformat(state[name]) if state[name] else None
            subscription.state = SubscriptionState(**state)
        subscription.invoices_paid = set(data["invoices_paid"])
        subscription.invoices_awaiting = {i["invoice_id"]: Invoice(**i) for i in data["invoices_awaiting"]}
        # Snapshots taken before refunds of renewals were handled have none of these.
        subscription.invoice_credits = dict(data.get("invoice_credits", {}))
        subscription.invoice_refunded = dict(data.get("invoice_refunded", {}))
        subscription.refunds_awaiting = {
            key: (value[0], value[1]) for key, value in data.get("refunds_awaiting", {}).items()
        }
        return subscription
