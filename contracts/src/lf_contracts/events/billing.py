from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lf_contracts.events.base import LenserId, Payload


class CreditsPurchasedV1(Payload):
    """A paid LemonSqueezy order: credit the lenser once per ``order_id``."""

    routing_key: ClassVar[str] = "billing.credits_purchased.v1"
    order_id: str = Field(min_length=1, max_length=200)
    lenser_id: LenserId
    credits: int = Field(gt=0)
    amount_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    variant_id: str | None = None
    test_mode: bool = False


class OrderRefundedV1(Payload):
    """A refund of an order. ``credits_refunded_total`` is cumulative for the order, so the
    wallet takes back only what it has not taken back yet: deliveries may repeat or reorder."""

    routing_key: ClassVar[str] = "billing.order_refunded.v1"
    order_id: str = Field(min_length=1, max_length=200)
    lenser_id: LenserId
    credits_refunded_total: int = Field(ge=0)
    refunded_amount_cents: int = Field(ge=0)


class CreditPackChangedV1(Payload):
    """The state of one credit pack (a LemonSqueezy variant) in billing's catalogue as of
    ``occurred_at``: a consumer keeps the newest state per ``variant_id`` (messages may reorder)."""

    routing_key: ClassVar[str] = "billing.credit_pack_changed.v1"
    variant_id: str = Field(min_length=1, max_length=64)
    product_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0)
    credits_granted: int = Field(gt=0)
    test_mode: bool
    active: bool
