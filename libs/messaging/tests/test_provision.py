"""make dev's broker provisioning: users per service, and a topology that upgrades old queues."""

import uuid

import aio_pika
import pytest
from aio_pika import Message
from aiormq.exceptions import ChannelAccessRefused

from lf_messaging import EXCHANGE, definitions, events_queue
from lf_messaging.provision import BrokerAdmin, declare_topology, provision_service_users
from lf_testing.infra import rabbitmq_admin_url

OLD_ARGUMENTS = {  # what an older release declared: no at-least-once dead-lettering
    "x-queue-type": "quorum",
    "x-delivery-limit": 5,
    "x-dead-letter-exchange": "lf.dead-letter",
    "x-dead-letter-routing-key": "wallet-api.dlq",
}


async def test_an_empty_queue_declared_by_an_older_release_is_recreated_and_a_full_one_is_named(
    amqp_url, channel
):
    old = await channel.declare_queue("wallet-api.events", durable=True, arguments=OLD_ARGUMENTS)
    held = await channel.declare_queue(
        "billing-webhook.events", durable=True, arguments=OLD_ARGUMENTS | {"x-dead-letter-routing-key": "x"}
    )
    await channel.default_exchange.publish(Message(b"waiting"), held.name)
    document = definitions({"wallet-api": ["billing.credits_purchased.v1"], "billing-webhook": ["x.y.v1"]})

    problems = await declare_topology(amqp_url, document)

    assert problems == [
        "queue billing-webhook.events holds messages under older arguments: drain it, then provision again"
    ]
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        fresh = await connection.channel()
        expected = next(q for q in document["queues"] if q["name"] == old.name)["arguments"]
        await fresh.declare_queue(old.name, durable=True, arguments=expected)  # the new arguments hold
        assert await (await fresh.get_queue(held.name)).get(no_ack=True, fail=False) is not None


async def test_provisioned_users_can_publish_their_contexts_keys_only(amqp_url, channel):
    service = f"wallet-api-t{uuid.uuid4().hex[:10]}"
    try:
        urls = await provision_service_users(amqp_url, [service])
        connection = await aio_pika.connect(urls[service])
        async with connection:
            own = await connection.channel(publisher_confirms=True)
            exchange = await own.get_exchange(EXCHANGE, ensure=False)
            await exchange.publish(Message(b"{}", user_id=service), "wallet.credits_deposited.v1")
            await own.declare_queue(events_queue(service), durable=True)  # its own queue: allowed
            with pytest.raises(ChannelAccessRefused):
                await exchange.publish(Message(b"{}", user_id=service), "billing.credits_purchased.v1")
    finally:
        await BrokerAdmin(rabbitmq_admin_url()).delete_user(service)
