"""A consumer's handler appends in the consumer's transaction: the consumer wakes the log's readers
after that transaction commits, and not for a handler that appended nothing or rolled back."""

import asyncio
import uuid
from datetime import UTC, datetime

from aio_pika import Message

from lf_contracts.events import CreditsPurchasedV1
from lf_eventstore import NewEvent, append, note_append
from lf_messaging import EXCHANGE, Consumer

SERVICE = "wallet"


def purchase(order_id: str) -> CreditsPurchasedV1:
    return CreditsPurchasedV1(
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        order_id=order_id,
        lenser_id=uuid.UUID("6f1c1d2e-0000-4000-8000-000000000001"),
        credits=100,
        amount_cents=500,
        currency="USD",
    )


async def test_the_consumer_wakes_readers_after_the_commit_of_a_handler_that_appended(
    pool, broker, channel, eventually
):
    seen_at_wake: list[asyncio.Task[int]] = []

    def appended() -> None:  # what BackgroundWork sets: the process's Wakeup.appended
        seen_at_wake.append(asyncio.create_task(pool.fetchval("SELECT count(*) FROM events")))

    async def handler(conn, event, context):
        if event.order_id.startswith("append"):
            await append(conn, f"order-{event.order_id}", 0, [NewEvent("Purchased", {})])
            note_append()  # what a runner bound to the consumer's connection does
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.order_id, context.message_id)
        if event.order_id.endswith("fails"):
            raise RuntimeError("rolled back")

    consumer = Consumer(
        SERVICE,
        broker,
        pool,
        {CreditsPurchasedV1: handler},
        accept_unidentified=True,
        delivery_limit=0,
        appended=appended,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        exchange = await channel.get_exchange(EXCHANGE)
        for order_id in ("append-fails", "nothing", "append-1"):
            body = purchase(order_id).model_dump_json().encode()
            await exchange.publish(Message(body, message_id=order_id), routing_key=purchase("x").routing_key)

        async def handled() -> bool:
            return await pool.fetchval("SELECT count(*) FROM applied") == 2

        dead = await channel.get_queue(f"{SERVICE}.dlq")

        async def failed() -> bool:  # the handler that raised: rolled back, then dead-lettered
            return await dead.get(no_ack=True, fail=False) is not None

        await eventually(handled)
        await eventually(failed)
        # Once, for the one that appended and committed, and its event was visible by then.
        assert [await check for check in seen_at_wake] == [1]
    finally:
        await consumer.stop()
        await task
