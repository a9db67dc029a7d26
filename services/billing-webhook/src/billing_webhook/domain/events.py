"""What happened in billing. Stored in the log under the class name; never changed once stored.

Each event carries its aggregate's key and the figures a reader needs, so projections and the relay
are simple functions of single events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from lf_eventstore import DomainEvent

# --- deliveries (stream delivery-<sha256 of the raw body>) -------------------------------------


class DeliveryReceived(DomainEvent):
    """A signed, well-formed webhook delivery, recorded before it was acknowledged."""

    delivery_key: str
    event_name: str
    payload: dict[str, Any]
    received_at: datetime


class DeliveryProcessed(DomainEvent):
    """``outcome`` is applied | unchanged | deferred | ignored; ``detail`` says what it did."""

    delivery_key: str
    outcome: str
    detail: str
    at: datetime


class DeliveryFailed(DomainEvent):
    """Processing raised: its effects were rolled back; ``deliveries replay`` tries again."""

    delivery_key: str
    error: str
    at: datetime


class DeliveryReplayRequested(DomainEvent):
    """An operator (``deliveries replay``) or a resend of a failed delivery asks to process it again."""

    delivery_key: str
    reason: str
    at: datetime


# --- orders (stream order-<LemonSqueezy order id>) --------------------------------------------


class OrderPaid(DomainEvent):
    order_id: str
    lenser_id: UUID
    credits: int
    amount_cents: int
    currency: str
    variant_id: str
    test_mode: bool
    session_id: UUID
    at: datetime


class OrderRefunded(DomainEvent):
    """``credits_refunded_total`` is cumulative for the order and only ever grows."""

    order_id: str
    lenser_id: UUID
    credits_refunded_total: int
    credits_refunded: int
    refunded_amount_cents: int
    at: datetime


class RefundAwaitingPayment(DomainEvent):
    """A refund arrived before its order: applied as soon as the order is paid."""

    order_id: str
    refunded_amount_cents: int
    total_cents: int
    at: datetime


# --- subscriptions (stream subscription-<LemonSqueezy subscription id>) ------------------------


class SubscriptionChanged(DomainEvent):
    """The subscription's newest known state; ``state_at`` is LemonSqueezy's ``updated_at``."""

    subscription_id: str
    lenser_id: UUID | None
    variant_id: str
    product_id: str | None
    status: str
    cancelled: bool
    renews_at: datetime | None
    ends_at: datetime | None
    state_at: datetime
    trigger: str
    at: datetime


class SubscriptionInvoicePaid(DomainEvent):
    """A renewal paid: the plan's monthly credits, once per invoice."""

    subscription_id: str
    invoice_id: str
    lenser_id: UUID
    variant_id: str
    credits: int
    amount_cents: int
    currency: str
    test_mode: bool
    at: datetime


class InvoiceAwaitingSubscription(DomainEvent):
    """A paid invoice arrived before the subscription's owner or plan was known."""

    subscription_id: str
    invoice_id: str
    amount_cents: int
    currency: str
    test_mode: bool
    at: datetime


class SubscriptionInvoiceRefunded(DomainEvent):
    """A credited renewal was refunded: ``credits_refunded_total`` (cumulative, only grows) of its
    credits are taken back, as for an order."""

    subscription_id: str
    invoice_id: str
    lenser_id: UUID
    credits_refunded_total: int
    credits_refunded: int
    refunded_amount_cents: int
    at: datetime


class InvoiceRefundAwaitingPayment(DomainEvent):
    """A renewal's refund arrived before the renewal was credited: applied right after it is."""

    subscription_id: str
    invoice_id: str
    refunded_amount_cents: int
    total_cents: int
    at: datetime


# --- checkout sessions (stream checkout-<session uuid>) ----------------------------------------


class CheckoutSessionCreated(DomainEvent):
    session_id: UUID
    lenser_id: UUID
    variant_id: str
    checkout_id: str
    checkout_url: str
    expires_at: datetime
    test_mode: bool
    at: datetime


class CheckoutSessionCompleted(DomainEvent):
    session_id: UUID
    order_id: str
    at: datetime


class CheckoutSessionExpired(DomainEvent):
    session_id: UUID
    at: datetime


# --- the catalogue (stream credit-pack-<variant id>) -------------------------------------------


class CreditPackState(DomainEvent):
    """Both catalogue events carry the pack's whole state."""

    variant_id: str
    product_id: str
    name: str
    price_cents: int
    credits_granted: int
    test_mode: bool
    active: bool
    at: datetime


class CreditPackDefined(CreditPackState):
    pass


class CreditPackChanged(CreditPackState):
    pass
