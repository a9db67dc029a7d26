"""The order aggregate's rules, without any I/O."""

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from billing_webhook.domain.commands import PayOrder, RefundOrder
from billing_webhook.domain.events import OrderRefunded
from billing_webhook.domain.order import Order, credits_to_take_back

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def payment(credits: int = 100, total: int = 500) -> PayOrder:
    return PayOrder(
        "o-1",
        lenser_id=uuid4(),
        credits=credits,
        amount_cents=total,
        currency="USD",
        variant_id="v-1",
        test_mode=False,
        session_id=uuid4(),
    )


def paid(credits: int = 100, total: int = 500) -> Order:
    order = Order()
    order.pay(payment(credits, total), at=NOW)
    return order


def refunds(order: Order) -> list[int]:
    return [e.credits_refunded_total for e in order.pending() if isinstance(e, OrderRefunded)]


def test_an_order_is_paid_once_however_often_it_is_paid():
    order = paid()
    again = order.pay(replace(payment(credits=999, total=1), variant_id="v-2", test_mode=True), at=NOW)
    assert again.kind == "unchanged"
    assert len(order.pending()) == 1 and order.credits == 100


@pytest.mark.parametrize(
    ("credits", "refunded", "total", "expected"),
    [
        (100, 0, 500, 0),
        (100, 250, 500, 50),
        (100, 1, 333, 0),  # 0.3 credit: rounded down
        (100, 332, 333, 99),  # 99.7: rounded down, never more than was refunded
        (100, 333, 333, 100),  # a full refund takes back every credit
        (100, 900, 500, 100),  # never more than was granted
        (100, 0, 0, 100),  # a refunded free order takes its credits back
    ],
)
def test_credits_taken_back_are_proportional_rounded_down_and_never_more_than_granted(
    credits, refunded, total, expected
):
    assert credits_to_take_back(credits, refunded, total) == expected


def test_cumulative_refunds_only_ever_take_back_more_and_repeats_or_stale_ones_change_nothing():
    order = paid(credits=100, total=500)
    outcomes = [
        order.refund(RefundOrder("o-1", amount, 500), at=NOW).kind for amount in (100, 100, 50, 300, 600, 500)
    ]
    assert outcomes == ["applied", "unchanged", "unchanged", "applied", "applied", "unchanged"]
    assert refunds(order) == [20, 60, 100]


def test_a_refund_before_payment_is_remembered_and_applied_right_after_payment():
    order = Order()
    assert order.refund(RefundOrder("o-1", 250, 500), at=NOW).kind == "deferred"
    assert (
        order.refund(RefundOrder("o-1", 100, 500), at=NOW).kind == "deferred"
    )  # smaller: not recorded again
    assert [type(e).__name__ for e in order.pending()] == ["RefundAwaitingPayment"]
    order.pay(payment(credits=100, total=500), at=NOW)
    assert refunds(order) == [50]


def test_a_replayed_order_rebuilt_from_its_snapshot_decides_the_same():
    order = paid()
    order.refund(RefundOrder("o-1", 250, 500), at=NOW)
    restored = Order.from_snapshot(order.to_snapshot())
    assert restored.refund(RefundOrder("o-1", 250, 500), at=NOW).kind == "unchanged"
    assert restored.refund(RefundOrder("o-1", 500, 500), at=NOW).kind == "applied"
