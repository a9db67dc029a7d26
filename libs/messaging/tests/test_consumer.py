import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from aio_pika import Message
from aio_pika.exceptions import ChannelPreconditionFailed

from lf_contracts.events import CreditsPurchasedV1
from lf_messaging import EXCHANGE, Broker, Consumer, declare_consumer_queue, publish

SERVICE = "wallet"
KEY = CreditsPurchasedV1.routing_key
LABELS = {"service": SERVICE, "routing_key": KEY}


def purchase(order_id, credits=100):
    return CreditsPurchasedV1(
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        order_id=order_id,
        lenser_id=uuid.UUID("6f1c1d2e-0000-4000-8000-000000000001"),
        credits=credits,
        amount_cents=500,
        currency="USD",
    )


async def record(conn, event, context):
    await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.order_id, context.message_id)


@pytest.fixture
async def start_consumer(pool, broker):
    """Starts a consumer for ``wallet`` and stops it (gracefully) after the test."""
    running = []

    async def start(handler=record, **options):
        # The test publishes as guest, a user of no context: accepted as in development.
        consumer = Consumer(
            SERVICE, broker, pool, {CreditsPurchasedV1: handler}, accept_unidentified=True, **options
        )
        task = asyncio.create_task(consumer.run())
        running.append((consumer, task))
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        return consumer

    yield start
    for consumer, task in running:
        await consumer.stop()
        await task


async def applied(pool):
    async with pool.acquire() as conn:
        return sorted(tuple(r) for r in await conn.fetch("SELECT order_id, message_id FROM applied"))


async def dead_letters(channel, eventually, count):
    """The first ``count`` messages of ``wallet.dlq``, waiting for them to arrive."""
    queue = await channel.get_queue(f"{SERVICE}.dlq")
    messages = []

    async def collected():
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        return len(messages) >= count

    await eventually(collected)
    return messages


async def test_the_same_message_delivered_five_times_at_once_takes_effect_once(
    pool, channel, start_consumer, eventually, metric
):
    async def slow_record(conn, event, context):
        await record(conn, event, context)
        await asyncio.sleep(0.2)  # hold the transaction open: the copies queue on the inbox row

    await start_consumer(slow_record)
    consumed = metric("messages_consumed_total", **LABELS)
    duplicates = metric("messages_duplicate_total", **LABELS)
    await asyncio.gather(*(publish(channel, purchase("o-1"), message_id="m-1") for _ in range(5)))

    def settled():
        return (metric("messages_consumed_total", **LABELS) - consumed) + (
            metric("messages_duplicate_total", **LABELS) - duplicates
        ) == 5

    await eventually(settled)
    assert metric("messages_consumed_total", **LABELS) - consumed == 1
    assert metric("messages_duplicate_total", **LABELS) - duplicates == 4
    assert await applied(pool) == [("o-1", "m-1")]
    async with pool.acquire() as conn:
        assert await conn.fetch("SELECT message_id, routing_key FROM inbox") == [("m-1", KEY)]


async def test_poison_messages_go_to_the_dead_letter_queue_at_once_and_the_next_message_is_handled(
    pool, channel, start_consumer, eventually, metric
):
    await start_consumer(record)
    queue = await channel.get_queue(f"{SERVICE}.events")
    await queue.bind(EXCHANGE, "billing.not_handled_here.v1")  # a key this consumer has no model for
    rejected_before = metric("messages_rejected_total", service=SERVICE, reason="invalid_payload")
    exchange = await channel.get_exchange(EXCHANGE)
    invalid = purchase("o-bad").model_dump(mode="json", by_alias=True) | {"credits": -5}
    await exchange.publish(Message(b"not json", message_id="p-not-json"), KEY)
    await exchange.publish(Message(json.dumps(invalid).encode(), message_id="p-invalid"), KEY)
    await exchange.publish(Message(b"{}", message_id="p-unknown-key"), "billing.not_handled_here.v1")
    await publish(channel, purchase("o-good"), message_id="g-1")

    dead = await dead_letters(channel, eventually, 3)
    await eventually(lambda: _count(pool, 1))
    assert sorted(m.message_id for m in dead) == ["p-invalid", "p-not-json", "p-unknown-key"]
    for message in dead:
        assert message.headers["x-first-death-reason"] == "rejected"
        assert message.headers["x-death"][0]["count"] == 1  # dead-lettered on its first delivery
    assert await applied(pool) == [("o-good", "g-1")]
    assert metric("messages_rejected_total", service=SERVICE, reason="invalid_payload") - rejected_before == 2


async def test_a_failing_handler_is_retried_up_to_the_delivery_limit_then_dead_lettered_while_others_flow(
    pool, channel, start_consumer, eventually, metric
):
    attempts = []

    async def handler(conn, event, context):
        await record(conn, event, context)
        if event.order_id == "o-bad":
            attempts.append(context.redelivered)
            raise RuntimeError("this order always fails")

    # Retries back off 0.5 s then 1 s: long enough to see the others pass meanwhile.
    await start_consumer(handler, delivery_limit=2, retry_delay=0.5)
    retried = metric("messages_retried_total", **LABELS)
    dead_lettered = metric("messages_dead_lettered_total", **LABELS)
    await publish(channel, purchase("o-bad"), message_id="bad")
    for n in range(5):
        await publish(channel, purchase(f"o-{n}"), message_id=f"good-{n}")

    await eventually(lambda: _count(pool, 5))
    assert len(attempts) < 3  # the good ones went through while the bad one was still retrying
    [dead] = await dead_letters(channel, eventually, 1)
    assert dead.message_id == "bad"
    assert dead.headers["x-first-death-reason"] == "rejected"  # by the consumer's own count
    assert attempts == [False, True, True]  # the first delivery and delivery_limit retries
    assert await applied(pool) == [(f"o-{n}", f"good-{n}") for n in range(5)]  # the failures rolled back
    assert metric("messages_retried_total", **LABELS) - retried == 2
    assert metric("messages_dead_lettered_total", **LABELS) - dead_lettered == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE message_id = 'bad'") == 0


async def _count(pool, expected):
    return len(await applied(pool)) == expected


async def test_the_consumer_ignores_fields_its_model_does_not_know(pool, channel, start_consumer, eventually):
    received = []

    async def handler(conn, event, context):
        received.append(event)

    await start_consumer(handler)
    body = purchase("o-1").model_dump(mode="json", by_alias=True) | {"loyaltyTier": "gold", "extra": {"a": 1}}
    exchange = await channel.get_exchange(EXCHANGE)
    await exchange.publish(Message(json.dumps(body).encode(), message_id="m-1"), KEY)

    await eventually(lambda: len(received) == 1)
    assert received == [purchase("o-1")]


async def test_stop_waits_for_in_flight_handlers_and_acks_their_messages(pool, channel, broker, eventually):
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(conn, event, context):
        entered.set()
        await release.wait()
        await record(conn, event, context)

    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: handler}, accept_unidentified=True)
    running = asyncio.create_task(consumer.run())
    await asyncio.wait_for(consumer.consuming.wait(), 10)
    await publish(channel, purchase("o-1"), message_id="m-1")
    await asyncio.wait_for(entered.wait(), 10)

    stopping = asyncio.create_task(consumer.stop())
    done, _ = await asyncio.wait([stopping], timeout=0.2)
    assert not done  # still waiting for the handler
    release.set()
    await asyncio.wait_for(stopping, 10)
    await asyncio.wait_for(running, 10)

    assert await applied(pool) == [("o-1", "m-1")]
    queue = await channel.declare_queue(f"{SERVICE}.events", passive=True)
    assert queue.declaration_result.message_count == 0  # acked before the channel closed


async def test_the_consumer_resumes_by_itself_after_the_broker_connection_is_lost(
    pool, amqp_url, proxy, channel, eventually
):
    await proxy.up()
    broker = Broker(proxy.url(amqp_url), reconnect_interval=0.1)
    await broker.start()
    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: record}, accept_unidentified=True)
    running = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        await publish(channel, purchase("o-1"), message_id="m-1")
        await eventually(lambda: _count(pool, 1))

        await proxy.down()
        await eventually(lambda: not broker.is_up())
        await publish(channel, purchase("o-2"), message_id="m-2")  # waits in the queue meanwhile
        await proxy.up()

        await eventually(lambda: _count(pool, 2))
        assert await applied(pool) == [("o-1", "m-1"), ("o-2", "m-2")]
    finally:
        await consumer.stop()
        await running
        await broker.close()


async def test_a_consumer_waiting_for_an_absent_broker_stops_at_once(pool, unused_tcp_port):
    broker = Broker(f"amqp://guest:guest@127.0.0.1:{unused_tcp_port}/", reconnect_interval=0.1)
    await broker.start()
    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: record})
    running = asyncio.create_task(consumer.run())
    try:
        done, _ = await asyncio.wait([running], timeout=0.3)
        assert not done and not consumer.consuming.is_set()  # waiting, not failing
        await asyncio.wait_for(consumer.stop(), 2)
        await asyncio.wait_for(running, 2)
    finally:
        await broker.close()


async def test_a_consumer_whose_queue_exists_with_another_delivery_limit_fails_loudly(pool, broker, channel):
    await declare_consumer_queue(channel, SERVICE, [KEY], delivery_limit=3)
    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: record})

    with pytest.raises(ChannelPreconditionFailed):
        await asyncio.wait_for(consumer.run(), 10)
