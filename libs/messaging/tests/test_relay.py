import asyncio
import contextlib
import uuid

import pytest
from aio_pika import DeliveryMode

from lf_contracts.events import CreditsPurchasedV1
from lf_eventstore import START, Checkpoint, NewEvent, Wakeup, append
from lf_messaging import EXCHANGE, Broker, BrokerUnavailable, Consumer, Relay
from lf_projections import FollowerRunner, catch_up, catch_up_once

SCHEMA = "svc"
LENSER = uuid.UUID("6f1c1d2e-0000-4000-8000-000000000001")


def to_message(event):
    """The service-side mapping: OrderPaid is public, CheckoutViewed is private."""
    if event.type == "OrderPaid":
        return CreditsPurchasedV1(
            occurred_at=event.recorded_at,
            order_id=event.data["order_id"],
            lenser_id=LENSER,
            credits=event.data["credits"],
            amount_cents=500,
            currency="USD",
        )
    return None


def make_relay(broker):
    return Relay(broker, to_message, ["OrderPaid", "CheckoutViewed"], confirm_timeout=5)


async def append_order(pool, order_id, *, metadata=None, private_too=False):
    """Append and wait until readers may see it: the read horizon is cluster-wide, so any open
    transaction on the server (another test's) holds it back for a moment."""
    events = [NewEvent("OrderPaid", {"order_id": order_id, "credits": 100})]
    if private_too:
        events.append(NewEvent("CheckoutViewed", {"order_id": order_id}))
    async with pool.acquire() as conn:
        async with conn.transaction():
            recorded = await append(conn, f"order-{order_id}", 0, events, metadata=metadata)
        deadline = asyncio.get_running_loop().time() + 10
        while not await conn.fetchval(
            "SELECT $1::text::xid8 < pg_snapshot_xmin(pg_current_snapshot())", str(recorded[0].transaction_id)
        ):
            assert asyncio.get_running_loop().time() < deadline, "append never became readable"
            await asyncio.sleep(0.02)
    return recorded


async def checkpoint(pool, name="relay"):
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1", name
        )
    return START if row is None else Checkpoint(row["transaction_id"], row["position"])


@pytest.fixture
async def observer(channel):
    """A queue that sees everything published on lf.events."""
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EXCHANGE, "#")
    return queue


async def received(queue):
    """Everything waiting in ``queue`` now."""
    messages = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    return messages


async def test_relay_publishes_each_public_event_once_with_its_event_id_and_correlation_headers(
    pool, broker, database_url, observer, eventually
):
    relay = make_relay(broker)
    wakeup = Wakeup(database_url, SCHEMA)
    runner = asyncio.create_task(
        FollowerRunner(relay, pool, wakeup, dsn=database_url, schema=SCHEMA, poll_seconds=0.2).run()
    )
    try:
        first = await append_order(
            pool,
            "o-1",
            metadata={"correlationId": "corr-1", "causationId": "cause-1", "requestId": "req-1"},
            private_too=True,
        )
        second = await append_order(pool, "o-2")
        last = second[-1]
        await eventually(lambda: _reached(pool, Checkpoint(last.transaction_id, last.position)))
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await wakeup.close()
        await relay.close()

    messages = await received(observer)
    assert [m.message_id for m in messages] == [str(first[0].event_id), str(second[0].event_id)]
    assert await catch_up(pool, relay) == 0  # checkpoint past everything: nothing is sent twice
    assert await received(observer) == []

    with_metadata, without = messages
    assert with_metadata.routing_key == CreditsPurchasedV1.routing_key
    assert with_metadata.correlation_id == "corr-1"
    assert with_metadata.headers["causation_id"] == "cause-1"
    assert with_metadata.headers["x-request-id"] == "req-1"
    assert with_metadata.content_type == "application/json"
    assert with_metadata.delivery_mode == DeliveryMode.PERSISTENT
    assert with_metadata.timestamp is not None
    body = CreditsPurchasedV1.model_validate_json(with_metadata.body)
    assert body == to_message(first[0])
    assert b'"orderId":"o-1"' in with_metadata.body  # wire names are the aliases

    event_id = str(second[0].event_id)
    assert without.correlation_id == event_id
    assert without.headers["causation_id"] == event_id
    assert "x-request-id" not in without.headers


async def _reached(pool, target):
    return await checkpoint(pool) == target


async def test_relay_checkpoint_stays_while_the_broker_is_down_and_events_go_out_once_it_is_back(
    pool, amqp_url, proxy, observer, eventually
):
    broker = await _started_broker(proxy.url(amqp_url))
    relay = make_relay(broker)
    try:
        # Down from the start: the broker keeps trying in the background, the relay refuses.
        assert not broker.is_up()
        [first] = await append_order(pool, "o-1")
        with pytest.raises(BrokerUnavailable):
            await catch_up_once(pool, relay)
        assert await checkpoint(pool) == START

        await proxy.up()
        await broker.wait_up(10)
        assert await catch_up(pool, relay) == 1
        assert [m.message_id for m in await received(observer)] == [str(first.event_id)]

        # Lost while running: live connections are cut; the robust connection reconnects later.
        await proxy.down()
        await eventually(lambda: not broker.is_up())
        [second] = await append_order(pool, "o-2")
        with pytest.raises(BrokerUnavailable):
            await catch_up_once(pool, relay)
        assert await checkpoint(pool) == Checkpoint(first.transaction_id, first.position)

        await proxy.up()
        await broker.wait_up(10)
        assert await catch_up(pool, relay) == 1
        assert [m.message_id for m in await received(observer)] == [str(second.event_id)]
        assert await checkpoint(pool) == Checkpoint(second.transaction_id, second.position)
    finally:
        await relay.close()
        await broker.close()


async def _started_broker(url):
    broker = Broker(url, reconnect_interval=0.1, connect_timeout=2)
    await broker.start()
    return broker


class Crash(Exception):
    pass


class CrashesAfterPublishing:
    """The relay of a process that dies after the broker confirmed, before its checkpoint commits."""

    def __init__(self, relay):
        self.relay, self.name, self.types = relay, relay.name, relay.types

    async def handle_batch(self, conn, events):
        await self.relay.handle_batch(conn, events)
        raise Crash


async def test_a_relay_crash_after_publishing_sends_the_event_again_and_the_inbox_applies_it_once(
    pool, broker, eventually, metric
):
    async def credit(conn, event, context):
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.order_id, context.message_id)

    consumer = Consumer("wallet", broker, pool, {CreditsPurchasedV1: credit}, accept_unidentified=True)
    consuming = asyncio.create_task(consumer.run())
    relay = make_relay(broker)
    labels = {"service": "wallet", "routing_key": CreditsPurchasedV1.routing_key}
    consumed = metric("messages_consumed_total", **labels)
    duplicates = metric("messages_duplicate_total", **labels)
    try:
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        [event] = await append_order(pool, "o-1")

        with pytest.raises(Crash):
            await catch_up_once(pool, CrashesAfterPublishing(relay))
        assert await checkpoint(pool) == START
        assert await catch_up(pool, relay) == 1  # the restarted relay publishes it again

        def settled():
            return (
                metric("messages_consumed_total", **labels)
                - consumed
                + metric("messages_duplicate_total", **labels)
                - duplicates
            ) == 2

        await eventually(settled)
    finally:
        await consumer.stop()
        await consuming
        await relay.close()

    async with pool.acquire() as conn:
        assert await conn.fetch("SELECT order_id, message_id FROM applied") == [("o-1", str(event.event_id))]
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 1
    assert metric("messages_duplicate_total", **labels) - duplicates == 1


def held_at_the_broker(relay):
    """``relay``, its publishing held until the returned event is set (a broker that hangs)."""
    waiting, release = asyncio.Event(), asyncio.Event()
    publish_all = relay._publish_all

    async def held(events):
        waiting.set()
        await release.wait()
        await publish_all(events)

    relay._publish_all = held
    return waiting, release


async def test_the_relay_holds_no_transaction_open_while_it_waits_for_the_broker(pool, broker):
    relay = make_relay(broker)
    waiting, release = held_at_the_broker(relay)
    await append_order(pool, "o-1")
    batch = asyncio.create_task(catch_up_once(pool, relay))
    try:
        await asyncio.wait_for(waiting.wait(), 10)
        async with pool.acquire() as conn:
            # The read horizon is server-wide: a transaction id or snapshot held here would keep
            # every follower of every service from seeing new commits.
            holding = await conn.fetch(
                "SELECT pid, state, backend_xid, backend_xmin FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                "   AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)"
            )
        assert holding == []
    finally:
        release.set()
        assert await asyncio.wait_for(batch, 10) == 1
        await relay.close()


async def test_an_overlapping_relay_never_moves_the_checkpoint_backwards(pool, broker, observer):
    slow, fast = make_relay(broker), make_relay(broker)
    waiting, release = held_at_the_broker(slow)
    [first] = await append_order(pool, "o-1")
    held = asyncio.create_task(catch_up_once(pool, slow))
    try:
        await asyncio.wait_for(waiting.wait(), 10)
        # Another runner (a replica taking over) goes on meanwhile, past o-1 and o-2.
        assert await asyncio.wait_for(catch_up(pool, fast), 10) == 1
        [second] = await append_order(pool, "o-2")
        assert await asyncio.wait_for(catch_up(pool, fast), 10) == 1
    finally:
        release.set()
        await asyncio.wait_for(held, 10)
        await slow.close()
        await fast.close()

    assert await checkpoint(pool) == Checkpoint(second.transaction_id, second.position)
    assert [m.message_id for m in await received(observer)] == [
        str(first.event_id),
        str(second.event_id),
        str(first.event_id),  # the slow one's publish: at least once, the inbox dedupes
    ]
