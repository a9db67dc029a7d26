"""Subscriptions: state from the newest delivery whatever the order, credits once per renewal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lf_contracts.events import CreditsPurchasedV1, OrderRefundedV1
from lf_testing.fakes import lemonsqueezy as ls

PURCHASED = CreditsPurchasedV1.routing_key
REFUNDED = OrderRefundedV1.routing_key

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


async def state(billing, subscription_id: str):
    return await billing.db.fetchrow(
        "SELECT lenser_id, variant_id, status, cancelled, invoices_credited, credits_granted"
        " FROM subscriptions WHERE subscription_id = $1",
        subscription_id,
    )


async def test_the_subscription_state_is_the_newest_delivered_whatever_the_arrival_order(billing, lenser):
    await billing.pack("v-monthly", credits=1000)
    session = await billing.session(lenser, "v-monthly")

    def change(event_name: str, hours: int, status: str, **extra) -> dict:
        return ls.subscription(
            "31", session_id=session, variant_id="v-monthly", event_name=event_name, status=status,
            updated_at=at(hours), **extra,
        )  # fmt: skip

    await billing.accepted(change("subscription_created", 0, "active"))
    await billing.accepted(change("subscription_cancelled", 2, "cancelled", cancelled=True, ends_at=at(720)))
    await billing.accepted(change("subscription_updated", 1, "active"))  # older than the cancellation
    await billing.settled()
    assert tuple(await state(billing, "31"))[:4] == (lenser, "v-monthly", "cancelled", True)
    for event_name, hours, status in [
        ("subscription_resumed", 3, "active"),
        ("subscription_paused", 4, "paused"),
        ("subscription_unpaused", 5, "active"),
        ("subscription_expired", 6, "expired"),
    ]:
        await billing.accepted(change(event_name, hours, status))
        await billing.settled()
        assert (await state(billing, "31"))["status"] == status, event_name


async def test_a_renewal_grants_the_plans_credits_once_per_invoice_and_the_first_invoice_none(
    billing, published, lenser
):
    await billing.pack("v-monthly", credits=1000, price_cents=900)
    session = await billing.session(lenser, "v-monthly")
    await billing.accepted(
        ls.subscription("32", session_id=session, variant_id="v-monthly", updated_at=at(0))
    )
    initial = await billing.accepted(
        ls.subscription_invoice("501", subscription_id="32", total=900, billing_reason="initial")
    )
    for _ in range(3):  # resent by hand, each time another body
        await billing.accepted(ls.subscription_invoice("502", subscription_id="32", total=900))
    await billing.accepted(ls.subscription_invoice("503", subscription_id="32", total=900))
    await billing.published_all()
    assert (await billing.delivery(initial["deliveryId"]))["outcome"] == "ignored"
    await published.drain()
    purchases = [(m.body["orderId"], m.body["credits"], m.body["lenserId"]) for m in published.of(PURCHASED)]
    assert purchases == [
        ("subscription-invoice-502", 1000, str(lenser)),
        ("subscription-invoice-503", 1000, str(lenser)),
    ]
    assert tuple(await state(billing, "32"))[4:] == (2, 2000)


async def test_a_renewal_that_arrives_before_its_subscription_is_credited_when_the_subscription_arrives(
    billing, published, lenser
):
    await billing.pack("v-monthly", credits=1000)
    session = await billing.session(lenser, "v-monthly")
    early = await billing.accepted(ls.subscription_invoice("601", subscription_id="33", total=900))
    await billing.published_all()
    assert (await billing.delivery(early["deliveryId"]))["outcome"] == "deferred"
    await billing.accepted(
        ls.subscription("33", session_id=session, variant_id="v-monthly", updated_at=at(0))
    )
    [purchase] = await published.wait_for(PURCHASED, 1)
    assert (purchase.body["orderId"], purchase.body["credits"]) == ("subscription-invoice-601", 1000)


async def test_a_refunded_renewal_takes_its_credits_back_like_a_refunded_order(billing, published, lenser):
    await billing.pack("v-monthly", credits=1000, price_cents=900)
    session = await billing.session(lenser, "v-monthly")
    await billing.accepted(
        ls.subscription("35", session_id=session, variant_id="v-monthly", updated_at=at(0))
    )
    await billing.accepted(ls.subscription_invoice("701", subscription_id="35", total=900))

    def refund(cents: int) -> dict:
        return ls.subscription_invoice(
            "701", subscription_id="35", total=900, status="partial_refund",
            event_name="subscription_payment_refunded", refunded_amount=cents,
        )  # fmt: skip

    await billing.accepted(refund(450))
    await billing.accepted(refund(450))  # resent: nothing more to take back
    await billing.accepted(refund(900))
    await billing.published_all()
    await published.drain()
    refunds = [(m.body["orderId"], m.body["creditsRefundedTotal"]) for m in published.of(REFUNDED)]
    assert refunds == [("subscription-invoice-701", 500), ("subscription-invoice-701", 1000)]
    assert [m.body["lenserId"] for m in published.of(REFUNDED)] == [str(lenser)] * 2


async def test_a_subscription_created_must_name_its_checkout_session(billing):
    response = await billing.deliver(ls.subscription("34", session_id=None, variant_id="v-monthly"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "webhook.missing_session"
