"""Each service may only say what it owns on the broker (issue 6 §3).

RabbitMQ users are cluster-wide: each test creates its own, named ``<service>-t<random>`` (the
name's first part is still the context, ``lf_messaging.identity``), and deletes them afterwards.
"""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika import Message
from aio_pika.exceptions import ChannelPreconditionFailed
from aiormq.exceptions import ChannelAccessRefused

from lf_contracts.events import CreditsPurchasedV1
from lf_messaging import EXCHANGE, Consumer, declare_exchanges, publish
from lf_messaging.identity import context_of_user, owning_context
from lf_messaging.provision import BrokerAdmin, service_url, vhost_of
from lf_testing.infra import rabbitmq_admin_url

SERVICE = "wallet"


def purchase(order_id):
    return CreditsPurchasedV1(
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        order_id=order_id,
        lenser_id=uuid.UUID("6f1c1d2e-0000-4000-8000-000000000001"),
        credits=100,
        amount_cents=500,
        currency="USD",
    )


@pytest.fixture
async def service_user(amqp_url):
    """``await service_user("billing-webhook")``: the AMQP URL of a fresh user with that service's
    rights in the test's vhost; ``rights`` overrides the service whose rights it gets."""
    admin = BrokerAdmin(rabbitmq_admin_url())
    created = []

    async def create(service, *, rights=None, topic_write=None):
        user = f"{service}-t{uuid.uuid4().hex[:10]}"
        password = uuid.uuid4().hex
        await admin.put_user(user, password)
        created.append(user)
        await admin.grant(vhost_of(amqp_url), user, rights or service)
        if topic_write is not None:  # a misconfigured deployment, for the consumer's own check
            await admin._api(  # the test bends one permission on purpose
                "PUT",
                f"/api/topic-permissions/{vhost_of(amqp_url)}/{user}",
                {"exchange": EXCHANGE, "write": topic_write, "read": ".*"},
            )
        return user, service_url(amqp_url, user, password)

    yield create
    for user in created:
        await admin.delete_user(user)


async def confirmed_channel(url):
    connection = await aio_pika.connect(url)
    return connection, await connection.channel(publisher_confirms=True)


def test_a_users_context_is_its_names_first_part_and_a_contracts_owner_its_keys_first_segment():
    assert context_of_user("wallet-api") == "wallet"
    assert context_of_user("billing-webhook") == "billing"
    assert context_of_user("execution-proxy-t1a2b3") == "execution"
    assert context_of_user("guest") is None
    assert context_of_user("lenserfight") is None
    assert context_of_user(None) is None
    assert owning_context("billing.credits_purchased.v1") == "billing"


async def test_a_services_user_publishes_its_own_contexts_keys_and_the_broker_refuses_any_other(
    service_user, channel
):
    user, url = await service_user("wallet-api")
    connection, own = await confirmed_channel(url)
    async with connection:
        exchange = await own.get_exchange(EXCHANGE, ensure=False)
        await exchange.publish(Message(b"{}", user_id=user), "wallet.credits_deposited.v1")
        with pytest.raises(ChannelAccessRefused):
            await exchange.publish(Message(b"{}", user_id=user), "billing.credits_purchased.v1")


async def test_a_forged_user_id_is_refused_by_the_broker(service_user, channel):
    _, url = await service_user("wallet-api")
    connection, own = await confirmed_channel(url)
    async with connection:
        exchange = await own.get_exchange(EXCHANGE, ensure=False)
        with pytest.raises(ChannelPreconditionFailed, match="user_id"):
            await exchange.publish(
                Message(b"{}", message_id="w-1", user_id="wallet-api"), "wallet.credits_deposited.v1"
            )


async def test_a_services_user_reads_only_its_own_queues(service_user, channel):
    await channel.declare_queue("billing-webhook.events", durable=True)
    _, url = await service_user("wallet-api")
    connection = await aio_pika.connect(url)
    async with connection:
        own = await connection.channel()
        with pytest.raises(ChannelAccessRefused):
            queue = await own.get_queue("billing-webhook.events", ensure=False)
            await queue.get(fail=False)


async def test_the_consumer_dead_letters_a_contract_published_by_another_contexts_user(
    pool, broker, channel, service_user, eventually, metric
):
    applied = []

    async def record(conn, event, context):
        applied.append(context.message_id)

    # Strict, as in production: guest (no context) is refused too.
    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: record})
    running = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        wrong_before = metric("messages_rejected_total", service=SERVICE, reason="wrong_publisher")
        # execution's user, misconfigured so that the broker lets it publish billing's key.
        intruder, intruder_url = await service_user("execution-proxy", topic_write=".*")
        owner, owner_url = await service_user("billing-webhook")
        for user, url, message_id in ((intruder, intruder_url, "forged"), (owner, owner_url, "genuine")):
            connection, own = await confirmed_channel(url)
            async with connection:
                await declare_exchanges(own)
                await publish(own, purchase(message_id), message_id=message_id, user_id=user)
        await publish(channel, purchase("anonymous"), message_id="anonymous", user_id="guest")

        dlq = await channel.get_queue(f"{SERVICE}.dlq")
        dead = []

        async def both_dead_lettered():
            while (message := await dlq.get(no_ack=True, fail=False)) is not None:
                dead.append(message.message_id)
            return len(dead) == 2 and applied == ["genuine"]

        await eventually(both_dead_lettered)
        assert sorted(dead) == ["anonymous", "forged"]
        wrong = metric("messages_rejected_total", service=SERVICE, reason="wrong_publisher")
        assert wrong - wrong_before == 1
    finally:
        await consumer.stop()
        await running


async def test_a_consumer_in_development_accepts_guest_but_still_refuses_a_wrong_context(
    pool, broker, channel, service_user, eventually
):
    applied = []

    async def record(conn, event, context):
        applied.append(context.message_id)

    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: record}, accept_unidentified=True)
    running = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        intruder, intruder_url = await service_user("execution-proxy", topic_write=".*")
        connection, own = await confirmed_channel(intruder_url)
        async with connection:
            await publish(own, purchase("forged"), message_id="forged", user_id=intruder)
        await publish(channel, purchase("dev"), message_id="dev")  # no user_id at all
        await publish(channel, purchase("guest"), message_id="guest", user_id="guest")
        dlq = await channel.get_queue(f"{SERVICE}.dlq")
        dead = []

        async def settled():
            while (message := await dlq.get(no_ack=True, fail=False)) is not None:
                dead.append(message.message_id)
            return dead == ["forged"] and sorted(applied) == ["dev", "guest"]

        await eventually(settled)
    finally:
        await consumer.stop()
        await running


def test_vhost_names_come_from_the_url():
    assert vhost_of("amqp://u:p@h:5672/") == "/"
    assert vhost_of("amqp://u:p@h:5672/t_1") == "t_1"
    assert json.dumps(vhost_of("amqp://u:p@h/%2F")) == '"/"'
