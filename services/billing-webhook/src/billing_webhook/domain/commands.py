"""What billing is asked to do, as plain data: built by the delivery handlers (and routes) and passed
whole to a use case and on to its aggregate, which records it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:  # the subscription's value objects; domain.subscription imports domain.order
    from billing_webhook.domain.subscription import Invoice, SubscriptionState


@dataclass(frozen=True, slots=True)
class PayOrder:
    """Credit ``credits`` for an order that was paid ``amount_cents`` through ``session_id``."""

    order_id: str
    lenser_id: UUID
    credits: int
    amount_cents: int
    currency: str
    variant_id: str
    test_mode: bool
    session_id: UUID


@dataclass(frozen=True, slots=True)
class RefundOrder:
    """``refunded_amount_cents`` is the order's cumulative refund (LemonSqueezy's ``refunded_amount``)."""

    order_id: str
    refunded_amount_cents: int
    total_cents: int


@dataclass(frozen=True, slots=True)
class OpenCheckout:
    """A checkout for ``lenser_id`` of an active pack; LemonSqueezy's answer completes the session."""

    lenser_id: UUID
    variant_id: str
    email: str | None


@dataclass(frozen=True, slots=True)
class CompleteCheckout:
    session_id: UUID
    order_id: str


@dataclass(frozen=True, slots=True)
class ObserveSubscription:
    """LemonSqueezy's state of a subscription, as ``trigger`` (an event name) delivered it."""

    subscription_id: str
    state: SubscriptionState
    lenser_id: UUID | None
    trigger: str


@dataclass(frozen=True, slots=True)
class PayInvoice:
    subscription_id: str
    invoice: Invoice


@dataclass(frozen=True, slots=True)
class RefundInvoice:
    """``refunded_amount_cents`` is the invoice's cumulative refund."""

    subscription_id: str
    invoice_id: str
    refunded_amount_cents: int
    total_cents: int
