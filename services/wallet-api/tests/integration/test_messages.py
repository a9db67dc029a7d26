"""Integration events in and out of wallet-api, through a real RabbitMQ vhost."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aio_pika

from lf_contracts.events import CreditsPurchasedV1, ExecutionSettledV1, OrderRefundedV1
from lf_messaging import publish
from lf_testing.waiting import eventually


def purchase(lenser, order_id="order-1", credits=500) -> CreditsPurchasedV1:
    return CreditsPurchasedV1(
        occurred_at=datetime.now(UTC),
        order_id=order_id,
        lenser_id=lenser,
        credits=credits,
        amount_cents=500,
        currency="USD",
    )


async def channel_on(settings):
    connection = await aio_pika.connect(settings.amqp_url)
    return connection, await connection.channel(publisher_confirms=True)


async def test_the_same_purchase_delivered_5_times_concurrently_is_credited_once(wallet, lenser):
    await wallet.consumer_ready()
    connection, channel = await channel_on(wallet.settings)
    event = purchase(lenser)
    async with connection:
        # Five deliveries of one message, and the same order under a second message id.
        await asyncio.gather(*(publish(channel, event, message_id="m-1") for _ in range(5)))
        await publish(channel, event, message_id="m-2")

    async def credited() -> bool:
        return await wallet.db.fetchval("SELECT count(*) FROM inbox") == 2

    await eventually(credited)
    assert (await wallet.balance(lenser))["balance"] == 500
    assert await wallet.db.fetchval("SELECT count(*) FROM events WHERE type = 'CreditsDeposited'") == 1


async def test_refunds_take_back_credits_up_to_the_cumulative_total_and_never_below_zero(wallet, lenser):
    await wallet.consumer_ready()
    connection, channel = await channel_on(wallet.settings)
    now = datetime.now(UTC)

    def refund(total: int) -> OrderRefundedV1:
        return OrderRefundedV1(
            occurred_at=now,
            order_id="order-1",
            lenser_id=lenser,
            credits_refunded_total=total,
            refunded_amount_cents=0,
        )

    async with connection:
        # The refund overtakes its order; then a larger refund, then the first one again.
        await publish(channel, refund(100), message_id="r-1")
        await publish(channel, purchase(lenser), message_id="p-1")
        await publish(channel, refund(300), message_id="r-2")
        await publish(channel, refund(100), message_id="r-3")
        await publish(channel, refund(900), message_id="r-4")

    async def all_handled() -> bool:
        return await wallet.db.fetchval("SELECT count(*) FROM inbox") == 5

    await eventually(all_handled)
    assert (await wallet.balance(lenser))["balance"] == 0
    assert await wallet.db.fetchval("SELECT reversed FROM deposits WHERE reference_id = 'order-1'") == 500


async def test_a_settlement_event_captures_its_reservation_once(wallet, lenser):
    await wallet.consumer_ready()
    await wallet.grant(lenser, 100)
    rid = (await (await wallet.reserve(lenser, 40, reference_id="exec-7")).json())["data"]["reservationId"]
    settled = ExecutionSettledV1(
        occurred_at=datetime.now(UTC),
        execution_id="exec-7",
        lenser_id=lenser,
        reservation_id=rid,
        credits_charged=12,
        provider="local",
        model="local-echo",
    )
    connection, channel = await channel_on(wallet.settings)
    async with connection:
        for message_id in ("s-1", "s-1", "s-2"):
            await publish(channel, settled, message_id=message_id)

    async def captured() -> bool:
        return await wallet.db.fetchval("SELECT count(*) FROM inbox") == 2

    await eventually(captured)
    balance = await wallet.balance(lenser)
    assert (balance["balance"], balance["reserved"]) == (88, 0)


async def test_wallet_events_are_published_once_each_for_other_services(wallet, lenser):
    connection, channel = await channel_on(wallet.settings)
    async with connection:
        exchange = await channel.declare_exchange("lf.events", aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "wallet.#")
        await wallet.grant(lenser, 70, key="g-1")
        rid = (await (await wallet.reserve(lenser, 20)).json())["data"]["reservationId"]
        await wallet.capture(rid, 15)
        received = []

        async def two_messages() -> bool:
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                received.append((message.routing_key, message.message_id, json.loads(message.body)))
            return len(received) >= 2

        await eventually(two_messages)
    assert [(key, body["credits"], body["balance"]) for key, _, body in received] == [
        ("wallet.credits_deposited.v1", 70, 70),
        ("wallet.credits_spent.v1", 15, 55),
    ]
    ids = [message_id for _, message_id, _ in received]
    assert len(set(ids)) == 2
    assert set(ids) == {
        str(row["event_id"])
        for row in await wallet.db.fetch(
            "SELECT event_id FROM events WHERE type IN ('CreditsDeposited', 'ReservationCaptured')"
        )
    }


async def test_a_poison_message_goes_to_the_dead_letter_queue_and_does_not_block_the_next(wallet, lenser):
    await wallet.consumer_ready()
    connection, channel = await channel_on(wallet.settings)
    async with connection:
        exchange = await channel.get_exchange("lf.events")
        poison = aio_pika.Message(b'{"orderId": 42}', message_id="poison-1", content_type="application/json")
        await exchange.publish(poison, "billing.credits_purchased.v1")
        await publish(channel, purchase(lenser, order_id="good"), message_id="good-1")

        async def good_credited() -> bool:
            return await wallet.db.fetchval("SELECT count(*) FROM inbox WHERE message_id = 'good-1'") == 1

        await eventually(good_credited)
        dlq = await channel.declare_queue("wallet-api.dlq", passive=True)

        async def dead_lettered() -> bool:
            message = await dlq.get(fail=False)
            return message is not None and message.message_id == "poison-1"

        await eventually(dead_lettered)
    assert (await wallet.balance(lenser))["balance"] == 500


async def test_credit_packs_from_billing_are_listed_as_products_newest_state_first(wallet, lenser):
    from datetime import timedelta

    from lf_contracts.events import CreditPackChangedV1
    from lf_testing.tokens import bearer

    await wallet.consumer_ready()
    now = datetime.now(UTC)

    def pack(name: str, at: datetime, active: bool = True) -> CreditPackChangedV1:
        return CreditPackChangedV1(
            occurred_at=at,
            variant_id="v-550",
            product_id="p-1",
            name=name,
            price_cents=500,
            credits_granted=550,
            test_mode=True,
            active=active,
        )

    connection, channel = await channel_on(wallet.settings)
    async with connection:
        await publish(channel, pack("Starter", now), message_id="c-2")
        await publish(channel, pack("Old name", now - timedelta(minutes=1)), message_id="c-1")  # late

    async def both_handled() -> bool:
        return await wallet.db.fetchval("SELECT count(*) FROM inbox") == 2

    await eventually(both_handled)
    body = await (await wallet.api.get("/wallet/products", headers=bearer(lenser))).json()
    assert body["data"]["products"] == [
        {
            "id": "p-1",
            "variantId": "v-550",
            "name": "Starter",
            "priceCents": 500,
            "creditsGranted": 550,
            "testMode": True,
        }
    ]
