"""Which billing events leave the service, and as which contract (the relay's mapping)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lf_contracts.events import CreditPackChangedV1, CreditsPurchasedV1, IntegrationEvent, OrderRefundedV1
from lf_eventstore import RecordedEvent

SUBSCRIPTION_ORDER_PREFIX = "subscription-invoice-"


def to_message(event: RecordedEvent) -> IntegrationEvent | None:
    d, at = event.data, event.recorded_at
    match event.type:
        case "OrderPaid":
            return _purchased(d, at, order_id=d["order_id"])
        case "OrderRefunded":
            return _refunded(d, at, order_id=d["order_id"])
        case "SubscriptionInvoicePaid":
            # The wallet credits once per order id: each renewal invoice is an order of its own.
            return _purchased(d, at, order_id=f"{SUBSCRIPTION_ORDER_PREFIX}{d['invoice_id']}")
        case "SubscriptionInvoiceRefunded":
            # Refunded as the order the renewal was credited as.
            return _refunded(d, at, order_id=f"{SUBSCRIPTION_ORDER_PREFIX}{d['invoice_id']}")
        case "CreditPackDefined" | "CreditPackChanged":
            return CreditPackChangedV1(
                occurred_at=at,
                variant_id=d["variant_id"],
                product_id=d["product_id"],
                name=d["name"],
                price_cents=d["price_cents"],
                credits_granted=d["credits_granted"],
                test_mode=d["test_mode"],
                active=d["active"],
            )
    return None


def _purchased(d: dict[str, Any], at: datetime, *, order_id: str) -> CreditsPurchasedV1:
    return CreditsPurchasedV1(
        occurred_at=at,
        order_id=order_id,
        lenser_id=d["lenser_id"],
        credits=d["credits"],
        amount_cents=d["amount_cents"],
        currency=d["currency"],
        variant_id=d["variant_id"],
        test_mode=d["test_mode"],
    )


def _refunded(d: dict[str, Any], at: datetime, *, order_id: str) -> OrderRefundedV1:
    return OrderRefundedV1(
        occurred_at=at,
        order_id=order_id,
        lenser_id=d["lenser_id"],
        credits_refunded_total=d["credits_refunded_total"],
        refunded_amount_cents=d["refunded_amount_cents"],
    )


RELAYED_TYPES = [
    "OrderPaid",
    "OrderRefunded",
    "SubscriptionInvoicePaid",
    "SubscriptionInvoiceRefunded",
    "CreditPackDefined",
    "CreditPackChanged",
]
