"""What billing is asked to do, as plain data: built by the delivery handlers (and routes) and passed
whole to a use case and on to its aggregate, which records it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


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
