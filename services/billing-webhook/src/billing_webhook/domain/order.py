"""An order: paid once, refunded cumulatively, never taking back more credits than it granted.

LemonSqueezy's ``refunded_amount`` is the order's cumulative refund in cents, so every
``order_refunded`` delivery states the whole refund so far: the credits to take back are
``min(credits, credits * refunded_amount // total)`` (rounded down: never more than granted; a
full refund takes back every credit), and they only ever grow, so repeats and reorderings change
nothing. A refund that arrives before its order is remembered and applied right after payment.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Self
from uuid import UUID

from billing_webhook.domain import errors
from billing_webhook.domain.commands import PayOrder, RefundOrder
from billing_webhook.domain.events import OrderPaid, OrderRefunded, RefundAwaitingPayment
from billing_webhook.domain.outcome import Outcome
from lf_eventstore import Aggregate, by_name


def credits_to_take_back(credits: int, refunded_amount_cents: int, total_cents: int) -> int:
    """The credits a refund of ``refunded_amount_cents`` out of ``total_cents`` takes back in all."""
    if refunded_amount_cents >= total_cents:
        return credits  # a full refund (of a free order too) takes everything back
    return credits * refunded_amount_cents // total_cents  # rounded down: below ``credits``


class Order(Aggregate):
    event_types = by_name(OrderPaid, OrderRefunded, RefundAwaitingPayment)

    def __init__(self) -> None:
        super().__init__()
        self.order_id: str | None = None
        self.lenser_id: UUID | None = None
        self.credits = 0
        self.credits_refunded_total = 0
        self.refund_awaiting: tuple[int, int] | None = None  # (refunded_amount_cents, total_cents)

    @property
    def paid(self) -> bool:
        return self.lenser_id is not None

    # --- commands -------------------------------------------------------------------------

    def pay(self, command: PayOrder, *, at: datetime) -> Outcome:
        if self.paid:
            return Outcome.unchanged(f"order {command.order_id} was already paid")
        if command.credits <= 0 or command.amount_cents < 0:
            raise errors.InvalidAmount(
                "an order grants a positive number of credits for a non-negative amount"
            )
        self._record(OrderPaid(**asdict(command), at=at))
        detail = f"order {command.order_id} paid: {command.credits} credits"
        if self.refund_awaiting is not None:
            self.refund(RefundOrder(command.order_id, *self.refund_awaiting), at=at)
            detail += f", {self.credits_refunded_total} taken back by an earlier refund"
        return Outcome.applied(detail)

    def refund(self, command: RefundOrder, *, at: datetime) -> Outcome:
        order_id, refunded_amount_cents, total_cents = (
            command.order_id,
            command.refunded_amount_cents,
            command.total_cents,
        )
        if refunded_amount_cents < 0 or total_cents < 0:
            raise errors.InvalidAmount("amounts are never negative")
        if not self.paid:
            remembered = self.refund_awaiting[0] if self.refund_awaiting else -1
            if refunded_amount_cents > remembered:
                self._record(
                    RefundAwaitingPayment(
                        order_id=order_id,
                        refunded_amount_cents=refunded_amount_cents,
                        total_cents=total_cents,
                        at=at,
                    )
                )
            return Outcome.deferred(f"order {order_id} is not paid yet: the refund waits for it")
        target = credits_to_take_back(self.credits, refunded_amount_cents, total_cents)
        if target <= self.credits_refunded_total:
            return Outcome.unchanged(
                f"order {order_id}: {self.credits_refunded_total} credits already taken back"
            )
        self._record(
            OrderRefunded(
                order_id=order_id,
                lenser_id=self.lenser_id,
                credits_refunded_total=target,
                credits_refunded=target - self.credits_refunded_total,
                refunded_amount_cents=refunded_amount_cents,
                at=at,
            )
        )
        return Outcome.applied(f"order {order_id}: {target} of {self.credits} credits taken back in all")

    # --- state ----------------------------------------------------------------------------

    def _apply(self, event: Any) -> None:
        match event:
            case OrderPaid():
                self.order_id, self.lenser_id, self.credits = event.order_id, event.lenser_id, event.credits
            case OrderRefunded():
                self.credits_refunded_total = event.credits_refunded_total
                self.refund_awaiting = None
            case RefundAwaitingPayment():
                self.order_id = event.order_id
                self.refund_awaiting = (event.refunded_amount_cents, event.total_cents)

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "lenser_id": str(self.lenser_id) if self.lenser_id else None,
            "credits": self.credits,
            "credits_refunded_total": self.credits_refunded_total,
            "refund_awaiting": list(self.refund_awaiting) if self.refund_awaiting else None,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        order = cls()
        order.order_id = data["order_id"]
        order.lenser_id = UUID(data["lenser_id"]) if data["lenser_id"] else None
        order.credits, order.credits_refunded_total = data["credits"], data["credits_refunded_total"]
        awaiting = data["refund_awaiting"]
        order.refund_awaiting = (awaiting[0], awaiting[1]) if awaiting else None
        return order
