"""The delivery processor runs different orders' deliveries at the same time, one order's in log
order, each delivery in a transaction of its own; exactly-once rests on each delivery's claim, so a
batch that stops half-way and runs again changes nothing that already committed.

The processor is driven by hand (``catch_up_once``) on an app without background work, with its
handlers wrapped to observe or disturb it. Every wait inside a delivery's transaction is bounded
(``WAIT``): no test leaves a transaction open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from billing_webhook.app import create_app
from billing_webhook.application.billing import Billing
from billing_webhook.application.processor import DeliveryProcessor
from billing_webhook.handlers import HANDLERS
from billing_webhook.settings import BillingSettings
from lf_projections import catch_up_once
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.waiting import eventually

WAIT = 3.0  # seconds: the longest any handler here keeps its delivery's transaction open


@pytest.fixture
async def api(settings: BillingSettings) -> AsyncIterator[TestClient]:
    """The API without its background work: only the test's processor processes deliveries."""
    async with TestClient(TestServer(create_app(settings, background=False))) as client:
        yield client


@pytest.fixture
def quiet(billing):
    return billing


def order(order_id: int, session: str, **extra) -> dict:
    return ls.order(order_id, session_id=session, variant_id="v-100", total=500, **extra)


def refund(order_id: int, session: str) -> dict:
    return order(order_id, session, event_name="order_refunded", status="refunded", refunded_amount=500)


async def process_all(db, processor: DeliveryProcessor) -> None:
    """Batches until nothing waits (once no other transaction holds the reading horizon back)."""

    async def nothing_pending() -> bool:
        await catch_up_once(db, processor)
        return not await db.fetchval("SELECT EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending')")

    await eventually(nothing_pending)


async def outcomes(quiet, *ids: str) -> list[tuple[str, str | None]]:
    return [((d := await quiet.delivery(i))["status"], d["outcome"]) for i in ids]


async def test_different_orders_are_processed_at_the_same_time_and_one_orders_deliveries_in_order(
    quiet, db, lenser
):
    await quiet.pack("v-100", credits=100)
    first, second = await quiet.session(lenser), await quiet.session(lenser)
    ids = [
        (await quiet.accepted(order(21, first)))["deliveryId"],
        (await quiet.accepted(order(22, second)))["deliveryId"],
        (await quiet.accepted(refund(21, first)))["deliveryId"],
    ]
    both_paying = asyncio.Barrier(2)
    seen: list[tuple[str, str]] = []

    async def paying(conn, document, **kwargs):
        # Inside the delivery's transaction, its order's stream locked: each of the two orders
        # waits here for the other one, so this passes only if both transactions are open at once.
        seen.append(("order_created", document.data.id))
        await asyncio.wait_for(both_paying.wait(), WAIT)
        return await HANDLERS["order_created"](conn, document, **kwargs)

    async def refunding(conn, document, **kwargs):
        seen.append(("order_refunded", document.data.id))
        return await HANDLERS["order_refunded"](conn, document, **kwargs)

    handlers = {**HANDLERS, "order_created": paying, "order_refunded": refunding}
    await process_all(db, DeliveryProcessor(Billing.create(db), handlers=handlers, concurrency=4))

    assert await outcomes(quiet, *ids) == [("processed", "applied")] * 3
    # The refund of order 21 came after its creation in the log, and was processed after it: it
    # took back what the creation granted (a refund processed first would have been "deferred").
    assert seen.index(("order_created", "21")) < seen.index(("order_refunded", "21"))
    [taken_back] = await quiet.events("OrderRefunded")
    assert (taken_back["order_id"], taken_back["credits_refunded"]) == ("21", 100)


async def test_a_batch_stopped_after_some_deliveries_committed_runs_again_without_applying_any_twice(
    quiet, db, lenser
):
    await quiet.pack("v-100", credits=100)
    sessions = [await quiet.session(lenser) for _ in range(3)]
    ids = [(await quiet.accepted(order(31 + n, s)))["deliveryId"] for n, s in enumerate(sessions)]
    connection_lost = True

    async def paying(conn, document, **kwargs):
        if document.data.id == "33" and connection_lost:
            # The infrastructure's failure, not the delivery's: the batch stops, the checkpoint stays.
            raise ConnectionResetError("the database connection dropped")
        return await HANDLERS["order_created"](conn, document, **kwargs)

    processor = DeliveryProcessor(Billing.create(db), handlers={**HANDLERS, "order_created": paying})

    async def stopped_half_way() -> bool:  # once the deliveries are visible to the processor
        try:
            await catch_up_once(db, processor)
        except ConnectionResetError:
            return True
        return False

    await eventually(stopped_half_way)
    assert await outcomes(quiet, *ids) == [
        ("processed", "applied"),
        ("processed", "applied"),
        ("pending", None),
    ]
    assert len(await quiet.events("OrderPaid")) == 2

    connection_lost = False
    await process_all(db, processor)  # the same batch again, whole

    assert await outcomes(quiet, *ids) == [("processed", "applied")] * 3
    paid = sorted(e["order_id"] for e in await quiet.events("OrderPaid"))
    assert paid == ["31", "32", "33"], "each order paid once"
    assert len(await quiet.events("DeliveryProcessed")) == 3
    assert await quiet.events("DeliveryFailed") == [], "a lost connection never marks a delivery failed"


async def test_a_failing_delivery_is_marked_failed_without_holding_up_the_others(quiet, db, lenser):
    await quiet.pack("v-100", credits=100)
    sessions = [await quiet.session(lenser) for _ in range(3)]
    ids = [(await quiet.accepted(order(41 + n, s)))["deliveryId"] for n, s in enumerate(sessions)]

    async def paying(conn, document, **kwargs):
        if document.data.id == "41":
            raise ValueError("this delivery's own bug")
        return await HANDLERS["order_created"](conn, document, **kwargs)

    await process_all(
        db, DeliveryProcessor(Billing.create(db), handlers={**HANDLERS, "order_created": paying})
    )

    assert await outcomes(quiet, *ids) == [
        ("failed", None),
        ("processed", "applied"),
        ("processed", "applied"),
    ]
    assert sorted(e["order_id"] for e in await quiet.events("OrderPaid")) == ["42", "43"]
    # The batch completed: the processor's checkpoint passed every delivery.
    assert not await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events e, follower_checkpoints c WHERE c.name = $1"
        " AND e.type = 'DeliveryReceived'"
        " AND (e.transaction_id::text::bigint, e.position) > (c.transaction_id, c.position))",
        DeliveryProcessor.name,
    )
