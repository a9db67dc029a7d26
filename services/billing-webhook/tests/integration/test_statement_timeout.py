"""A statement timeout in one delivery is that delivery's failure, not its whole batch's."""

from __future__ import annotations

import asyncpg
import pytest

from lf_contracts.events import CreditsPurchasedV1, OrderRefundedV1
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.waiting import eventually

PURCHASED = CreditsPurchasedV1.routing_key
REFUNDED = OrderRefundedV1.routing_key

STATEMENT_TIMEOUT = "1s"


@pytest.fixture
async def settings(settings):
    # Every session of this test's database (the service's pool included) times statements out.
    admin = await asyncpg.connect(settings.database_url)
    try:
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(f"ALTER DATABASE \"{database}\" SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    finally:
        await admin.close()
    return settings


async def test_a_delivery_blocked_past_the_statement_timeout_fails_alone_and_is_replayable(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100)
    first, second = await billing.session(lenser), await billing.session(lenser)
    await billing.accepted(ls.order(21, session_id=first, variant_id="v-100", total=500))
    await published.wait_for(PURCHASED, 1)

    paid = ls.order(22, session_id=second, variant_id="v-100", total=500)
    refund = ls.order(
        21, session_id=first, variant_id="v-100", total=500, event_name="order_refunded",
        status="refunded", refunded_amount=500,
    )  # fmt: skip
    blocker = await asyncpg.connect(billing.settings.database_url)
    try:
        async with blocker.transaction():
            # Someone holds the checkout sessions against writes: order 22's completion of its
            # session waits until the timeout cancels it. (SHARE takes no transaction id, so the
            # log's readers are not held up as they would be by a row lock.)
            await blocker.execute("LOCK TABLE billing.checkout_sessions IN SHARE MODE")
            blocked = await billing.accepted(paid)
            other = await billing.accepted(refund)

            async def other_processed() -> bool:
                return (await billing.delivery(other["deliveryId"]))["status"] == "processed"

            await eventually(other_processed, timeout=15)  # while the catalogue is still locked
            failed = await billing.delivery(blocked["deliveryId"])
            assert failed["status"] == "failed"
            assert "QueryCanceledError" in failed["detail"]
    finally:
        await blocker.close()

    # Once the cause is gone, LemonSqueezy's resend (the same body) processes it.
    await billing.accepted(paid)
    purchases = await published.wait_for(PURCHASED, 2)
    assert [m.body["orderId"] for m in purchases] == ["21", "22"]
    [taken_back] = await published.wait_for(REFUNDED, 1)
    assert (taken_back.body["orderId"], taken_back.body["creditsRefundedTotal"]) == ("21", 100)
