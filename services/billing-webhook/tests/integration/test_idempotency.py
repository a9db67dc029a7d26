"""Deliveries arrive at least once, concurrently, and again much later: an order is paid once."""

from __future__ import annotations

import asyncio
from uuid import UUID

from lf_contracts.events import CreditsPurchasedV1
from lf_testing.fakes import lemonsqueezy as ls

PURCHASED = CreditsPurchasedV1.routing_key


async def test_the_same_order_delivered_20_times_concurrently_and_again_an_hour_later_is_credited_once(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    body = ls.encode(ls.order(1001, session_id=session, variant_id="v-100", total=1000, quantity=2))
    responses = await asyncio.gather(*(billing.deliver(body) for _ in range(20)))
    assert [r.status for r in responses] == [200] * 20
    answers = [(await r.json())["data"] for r in responses]
    assert len({a["deliveryId"] for a in answers}) == 1
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 19
    await published.wait_for(PURCHASED, 1)
    await billing.published_all()

    # An hour later (everything processed and published): an operator resends it by hand.
    again = await billing.deliver(body)
    assert again.status == 200 and (await again.json())["data"]["duplicate"] is True
    await billing.published_all()
    await published.drain()
    [purchase] = published.of(PURCHASED)
    assert (purchase.body["orderId"], purchase.body["credits"]) == ("1001", 200)
    assert len(await billing.events("OrderPaid")) == 1
    assert await billing.delivery_streams() == 1


async def test_deliveries_of_one_order_with_different_bodies_still_pay_it_once(billing, published, lenser):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    # Each carries another webhook_id (another endpoint, another resend): different bytes, same order.
    deliveries = [ls.order(7, session_id=session, variant_id="v-100", total=500) for _ in range(3)]
    answers = await asyncio.gather(*(billing.accepted(d) for d in deliveries))
    assert len({a["deliveryId"] for a in answers}) == 3
    await billing.published_all()
    outcomes = sorted([(await billing.delivery(a["deliveryId"]))["outcome"] for a in answers])
    assert outcomes == ["applied", "unchanged", "unchanged"]
    await published.drain()
    assert [m.body["credits"] for m in published.of(PURCHASED)] == [100]


async def test_an_order_already_paid_through_one_session_leaves_another_session_open(billing, lenser):
    await billing.pack("v-100", credits=100)
    first, second = await billing.session(lenser), await billing.session(lenser)
    await billing.accepted(ls.order(8, session_id=first, variant_id="v-100", total=500))
    await billing.accepted(ls.order(8, session_id=second, variant_id="v-100", total=500))
    await billing.published_all()
    statuses = {
        row["session_id"]: row["status"]
        for row in await billing.db.fetch("SELECT session_id, status FROM checkout_sessions")
    }
    assert (statuses[UUID(first)], statuses[UUID(second)]) == ("completed", "created")
