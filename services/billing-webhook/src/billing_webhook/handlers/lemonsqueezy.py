"""What each LemonSqueezy event does, on the delivery processor's connection and transaction.

A handler gets a delivery validated at receipt and returns what it did (an ``Outcome``); raising
marks the delivery failed with its effects rolled back (replayable once the cause is fixed).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from billing_webhook.adapters.lemonsqueezy.payloads import (
    Document,
    Order,
    SubscriptionInvoice,
    SubscriptionResource,
)
from billing_webhook.application import queries
from billing_webhook.application.billing import Billing
from billing_webhook.domain import errors
from billing_webhook.domain.commands import (
    CompleteCheckout,
    ObserveSubscription,
    PayInvoice,
    PayOrder,
    RefundInvoice,
    RefundOrder,
)
from billing_webhook.domain.outcome import Outcome
from billing_webhook.domain.subscription import Invoice, SubscriptionState


async def on_order_created(
    conn: asyncpg.Connection, document: Document[Order], *, billing: Billing, metadata: dict[str, Any]
) -> Outcome:
    """A paid order credits its checkout session's lenser with the pack's credits times the
    quantity; the amount is what the order says was paid (custom prices and discounts included)."""
    order, meta = document.data, document.meta
    attributes, item = order.attributes, order.attributes.first_order_item
    if attributes.status != "paid":
        return Outcome.ignored(f"order {order.id} is {attributes.status}, not paid")
    # One round trip for both lookups: the processor's transaction pays each statement's latency.
    session, pack = await queries.session_and_pack(conn, meta.session_uuid, item.variant_id)
    if session is None:
        raise errors.SessionNotFound(meta.session_id)
    if pack is None:
        raise errors.VariantNotFound(item.variant_id)
    pay = PayOrder(
        order.id,
        lenser_id=session.lenser_id,
        credits=pack.credits_granted * item.quantity,
        amount_cents=attributes.total,
        currency=attributes.currency,
        variant_id=item.variant_id,
        test_mode=attributes.test_mode or meta.test_mode,
        session_id=session.session_id,
    )
    outcome = await billing.orders.pay(pay, metadata=metadata)
    if outcome.kind == "applied":
        # Only the delivery that pays the order completes its session: a repeat of an order that
        # was paid through another session must not mark this one completed.
        await billing.checkouts.complete(CompleteCheckout(session.session_id, order.id), metadata=metadata)
    return outcome


async def on_order_refunded(
    conn: asyncpg.Connection, document: Document[Order], *, billing: Billing, metadata: dict[str, Any]
) -> Outcome:
    attributes = document.data.attributes
    refund = RefundOrder(document.data.id, attributes.refunded_amount, attributes.total)
    return await billing.orders.refund(refund, metadata=metadata)


async def on_subscription_changed(
    conn: asyncpg.Connection,
    document: Document[SubscriptionResource],
    *,
    billing: Billing,
    metadata: dict[str, Any],
) -> Outcome:
    subscription, meta = document.data, document.meta
    a = subscription.attributes
    session = await queries.session(conn, meta.session_uuid) if meta.session_uuid else None
    state = SubscriptionState(
        a.variant_id, a.product_id, a.status, a.cancelled, a.renews_at, a.ends_at, a.updated_at
    )
    lenser_id = session.lenser_id if session else None
    observe = ObserveSubscription(subscription.id, state, lenser_id=lenser_id, trigger=meta.event_name)
    return await billing.subscriptions.observe(observe, metadata=metadata)


async def on_subscription_payment_success(
    conn: asyncpg.Connection,
    document: Document[SubscriptionInvoice],
    *,
    billing: Billing,
    metadata: dict[str, Any],
) -> Outcome:
    """A paid renewal grants the plan's monthly credits. The first invoice (``initial``) does not:
    its checkout's ``order_created`` credits the first period; nor do proration invoices."""
    invoice, meta = document.data, document.meta
    a = invoice.attributes
    if a.status != "paid" or a.billing_reason != "renewal":
        return Outcome.ignored(
            f"invoice {invoice.id} ({a.billing_reason}, {a.status}): only paid renewals grant credits"
        )
    paid = Invoice(invoice.id, a.total, a.currency, a.test_mode or meta.test_mode)
    return await billing.subscriptions.pay_invoice(PayInvoice(a.subscription_id, paid), metadata=metadata)


async def on_subscription_payment_refunded(
    conn: asyncpg.Connection,
    document: Document[SubscriptionInvoice],
    *,
    billing: Billing,
    metadata: dict[str, Any],
) -> Outcome:
    """A refunded renewal takes back its credits, like a refunded order. The first invoice's
    credits came with its order, whose ``order_refunded`` takes them back."""
    invoice = document.data
    a = invoice.attributes
    if a.billing_reason != "renewal":
        return Outcome.ignored(f"invoice {invoice.id} ({a.billing_reason}): only renewals granted credits")
    refund = RefundInvoice(a.subscription_id, invoice.id, a.refunded_cents, a.total)
    return await billing.subscriptions.refund_invoice(refund, metadata=metadata)
