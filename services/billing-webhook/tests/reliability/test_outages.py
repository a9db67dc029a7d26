"""Crashes and outages: a 200 means the delivery's messages will be published, whatever happens next."""

from __future__ import annotations

import asyncio
import subprocess
from uuid import uuid4

import aio_pika
import aiohttp
import pytest

from lf_contracts.events import CreditsPurchasedV1
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.processes import ServiceProcess
from lf_testing.waiting import eventually

PURCHASED = CreditsPurchasedV1.routing_key

pytestmark = pytest.mark.slow


@pytest.fixture
async def service(settings, lemonsqueezy):
    process = ServiceProcess(
        "billing_webhook",
        {
            "DATABASE_URL": settings.database_url,
            "AMQP_URL": settings.amqp_url,
            "DB_ROLE": settings.db_role,
            "PLATFORM_API_KEY": settings.platform_api_key,
            "LEMONSQUEEZY_WEBHOOK_SECRET": settings.lemonsqueezy_webhook_secret,
            "LEMONSQUEEZY_API_URL": settings.lemonsqueezy_api_url,
            "LEMONSQUEEZY_API_KEY": settings.lemonsqueezy_api_key,
        },
    )
    yield process
    process.stop()


async def downstream_queue(amqp_url: str):
    """A durable queue another service would own, bound to billing's events."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange("lf.events", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("downstream.events", durable=True)
    await queue.bind(exchange, "billing.#")
    return connection, queue


async def drain(queue, into: list[str]) -> None:
    while (message := await queue.get(fail=False)) is not None:
        if message.routing_key == PURCHASED:
            into.append(message.message_id)
        await message.ack()


async def order_paid_ids(db) -> set[str]:
    return {
        str(r["event_id"]) for r in await db.fetch("SELECT event_id FROM events WHERE type = 'OrderPaid'")
    }


async def open_session(http: aiohttp.ClientSession, url: str, settings) -> str:
    """A checkout session for a seeded dev pack (``serve`` seeds the empty catalogue)."""
    body = {"lenserId": str(uuid4()), "variantId": "dev-100"}
    async with http.post(
        f"{url}/internal/checkouts", json=body, headers={"X-Platform-Api-Key": settings.platform_api_key}
    ) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["data"]["sessionId"]


async def deliver(http: aiohttp.ClientSession, url: str, settings, order_id: int, session: str) -> int:
    body = ls.encode(ls.order(order_id, session_id=session, variant_id="dev-100", total=100))
    async with http.post(
        f"{url}/webhook/lemonsqueezy",
        data=body,
        headers=ls.headers(body, settings.lemonsqueezy_webhook_secret),
    ) as response:
        return response.status


@pytest.mark.stops_broker  # every other test would lose its broker meanwhile
async def test_with_rabbitmq_stopped_every_delivery_gets_200_and_its_messages_arrive_once_it_returns(
    service, settings, db
):
    connection, _ = await downstream_queue(settings.amqp_url)
    await connection.close()
    await service.start()
    async with aiohttp.ClientSession() as http:
        sessions = [await open_session(http, service.url, settings) for _ in range(10)]
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
        try:
            statuses = [
                await deliver(http, service.url, settings, 100 + n, s) for n, s in enumerate(sessions)
            ]
            async with http.get(f"{service.url}/health") as response:
                health = await response.json()

            async def processed_meanwhile() -> bool:
                return len(await order_paid_ids(db)) == 10

            await eventually(processed_meanwhile)
        finally:
            subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)
            subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True)
    assert statuses == [200] * 10
    assert (health["status"], health["broker"]) == ("degraded", False)
    connection, queue = await downstream_queue(settings.amqp_url)
    received: list[str] = []

    async def all_arrived() -> bool:
        await drain(queue, received)
        return set(received) == await order_paid_ids(db)

    await eventually(all_arrived, timeout=60)
    assert len(received) == len(set(received)) == 10
    await connection.close()


async def test_a_service_killed_right_after_answering_200_publishes_the_credits_after_restart(
    service, settings, db
):
    connection, queue = await downstream_queue(settings.amqp_url)
    await service.start()
    async with aiohttp.ClientSession() as http:
        sessions = [await open_session(http, service.url, settings) for _ in range(10)]
        statuses = await asyncio.gather(
            *(deliver(http, service.url, settings, 200 + n, s) for n, s in enumerate(sessions))
        )
    service.kill()  # right after the last 200: some recorded only, some processed, some published
    assert statuses == [200] * 10
    await service.start()
    received: list[str] = []

    async def all_arrived() -> bool:
        await drain(queue, received)
        return len(await order_paid_ids(db)) == 10 and set(received) == await order_paid_ids(db)

    await eventually(all_arrived, timeout=30)
    # A republish after the kill carries the same message id, so a consumer's inbox applies it once.
    assert len(set(received)) == 10
    orders = await db.fetchval("SELECT count(DISTINCT stream_id) FROM events WHERE type = 'OrderPaid'")
    assert orders == 10
    await connection.close()
