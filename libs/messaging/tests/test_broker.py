import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from lf_contracts.events import CreditsPurchasedV1
from lf_messaging import EXCHANGE, Broker, BrokerUnavailable, publish


async def test_a_broker_without_rabbitmq_starts_at_once_reports_down_and_refuses_channels(unused_tcp_port):
    broker = Broker(f"amqp://guest:guest@127.0.0.1:{unused_tcp_port}/", reconnect_interval=0.1)
    await broker.start()
    try:
        assert not broker.is_up()
        with pytest.raises(BrokerUnavailable, match="not connected"):
            await broker.channel()
    finally:
        await broker.close()


async def test_a_started_broker_is_up_and_gives_publisher_confirm_channels(broker):
    channel = await broker.channel()
    try:
        assert broker.is_up()
        assert channel.publisher_confirms
    finally:
        await channel.close()


async def test_publish_refuses_a_payload_that_consumers_would_reject_before_sending_it(channel):
    observer = await channel.declare_queue(exclusive=True)
    await observer.bind(EXCHANGE, "#")
    invalid = CreditsPurchasedV1.model_construct(  # built without validation, as a buggy mapping might
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        order_id="o-1",
        lenser_id=uuid.uuid4(),
        credits=-1,
        amount_cents=500,
        currency="USD",
    )

    with pytest.raises(ValidationError):
        await publish(channel, invalid, message_id="m-1")
    assert await observer.get(fail=False) is None
