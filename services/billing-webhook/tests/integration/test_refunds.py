"""Refunds: cumulative, never more than was granted, in any order, before their order too."""

from __future__ import annotations

import asyncio

from lf_contracts.events import CreditsPurchasedV1, OrderRefundedV1
from lf_testing.fakes import lemonsqueezy as ls

PURCHASED = CreditsPurchasedV1.routing_key
REFUNDED = OrderRefundedV1.routing_key


def refund(order_id: int, session, refunded_amount: int, total: int = 500) -> dict:
    return ls.order(
        order_id,
        session_id=session,
        variant_id="v-100",
        total=total,
        event_name="order_refunded",
        status="refunded" if refunded_amount >= total else "partial_refund",
        refunded_amount=refunded_amount,
    )


async def test_a_refund_that_arrives_before_its_order_is_applied_when_the_order_arrives(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    early = await billing.accepted(refund(11, session, 250))
    await billing.published_all()
    assert (await billing.delivery(early["deliveryId"]))["outcome"] == "deferred"
    await published.drain()
    assert published.of(REFUNDED) == []  # nothing to take back from an order nobody was credited for

    await billing.accepted(ls.order(11, session_id=session, variant_id="v-100", total=500))
    [purchase] = await published.wait_for(PURCHASED, 1)
    [taken_back] = await published.wait_for(REFUNDED, 1)
    assert purchase.body["credits"] == 100
    assert (taken_back.body["orderId"], taken_back.body["lenserId"]) == ("11", str(lenser))
    assert (taken_back.body["creditsRefundedTotal"], taken_back.body["refundedAmountCents"]) == (50, 250)


async def test_partial_refunds_in_any_order_and_past_the_total_never_take_back_more_than_was_granted(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    await billing.accepted(ls.order(12, session_id=session, variant_id="v-100", total=300))
    await published.wait_for(PURCHASED, 1)
    # Cumulative refunded amounts of 100, 200 (twice), 50 (stale) and 450 (past the 300 paid), at once.
    amounts = [200, 100, 50, 200, 450]
    await asyncio.gather(*(billing.accepted(refund(12, session, a, total=300)) for a in amounts))
    await billing.published_all()
    await published.drain()
    totals = [m.body["creditsRefundedTotal"] for m in published.of(REFUNDED)]
    assert totals == sorted(set(totals)), "each message takes back more than the one before"
    assert totals[-1] == 100 and all(0 <= t <= 100 for t in totals)
    taken = [e["credits_refunded"] for e in await billing.events("OrderRefunded")]
    assert sum(taken) == 100 and min(taken) > 0


async def test_a_full_refund_takes_back_every_credit_and_a_rounding_never_takes_back_more(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    await billing.accepted(ls.order(13, session_id=session, variant_id="v-100", total=333))
    await billing.accepted(refund(13, session, 1, total=333))  # 0.3 credits: rounds down to nothing
    await billing.accepted(refund(13, session, 332, total=333))  # 99.7: rounds down to 99
    await billing.accepted(refund(13, session, 333, total=333))
    await billing.published_all()
    await published.drain()
    assert [m.body["creditsRefundedTotal"] for m in published.of(REFUNDED)] == [99, 100]


async def test_a_refund_of_an_order_that_never_arrives_is_acknowledged_and_publishes_nothing(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    data = await billing.accepted(refund(404, session, 500))
    await billing.published_all()
    row = await billing.delivery(data["deliveryId"])
    assert (row["status"], row["outcome"]) == ("processed", "deferred")
    await published.drain()
    assert published.of(REFUNDED) == [] and published.of(PURCHASED) == []
    assert [e["refunded_amount_cents"] for e in await billing.events("RefundAwaitingPayment")] == [500]
