"""Crashes and outages: a killed process and a stopped broker lose nothing and duplicate nothing."""

from __future__ import annotations

import asyncio
import subprocess
from uuid import uuid4

import aio_pika
import aiohttp
import pytest

from lf_testing.processes import ServiceProcess
from lf_testing.waiting import eventually

pytestmark = pytest.mark.slow


async def grant(http: aiohttp.ClientSession, url: str, api_key: str, lenser, amount: int) -> int:
    async with http.post(
        f"{url}/internal/wallets/{lenser}/grants",
        json={"amount": amount, "reason": "outage test", "idempotencyKey": str(uuid4())},
        headers={"X-Platform-Api-Key": api_key},
    ) as response:
        return response.status


async def downstream_queue(amqp_url: str):
    """A durable queue another service would own, bound to the wallet's events."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange("lf.events", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("downstream.events", durable=True)
    await queue.bind(exchange, "wallet.#")
    return connection, queue


async def drain(queue, into: list[str]) -> None:
    while (message := await queue.get(fail=False)) is not None:
        into.append(message.message_id)
        await message.ack()


async def deposit_event_ids(db) -> set[str]:
    return {
        str(r["event_id"])
        for r in await db.fetch("SELECT event_id FROM events WHERE type = 'CreditsDeposited'")
    }


@pytest.fixture
async def service(settings):
    process = ServiceProcess(
        "wallet_api",
        {
            "DATABASE_URL": settings.database_url,
            "AMQP_URL": settings.amqp_url,
            "DB_ROLE": settings.db_role,
            "PLATFORM_API_KEY": settings.platform_api_key,
        },
    )
    yield process
    process.stop()


async def test_a_killed_service_publishes_what_it_appended_after_restart_exactly_once_downstream(
    service, settings, db
):
    connection, queue = await downstream_queue(settings.amqp_url)
    lenser = uuid4()
    await service.start()
    async with aiohttp.ClientSession() as http:
        statuses = await asyncio.gather(
            *(grant(http, service.url, settings.platform_api_key, lenser, 10) for _ in range(30))
        )
    assert set(statuses) == {201}
    # Mid-flight: some events appended but not published, or published but not checkpointed.
    service.kill()
    await service.start()
    received: list[str] = []

    async def all_arrived() -> bool:
        await drain(queue, received)
        return set(received) == await deposit_event_ids(db)

    await eventually(all_arrived, timeout=30)
    # Redeliveries carry the same message id, so a consumer's inbox applies each event once.
    assert len(set(received)) == 30
    await connection.close()


@pytest.mark.stops_broker  # every other test would lose its broker meanwhile
async def test_with_rabbitmq_stopped_the_api_keeps_answering_and_every_event_arrives_after_it_returns(
    service, settings, db
):
    connection, queue = await downstream_queue(settings.amqp_url)
    await connection.close()
    await service.start()
    lenser = uuid4()
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
    try:
        async with aiohttp.ClientSession() as http:
            statuses = [
                await grant(http, service.url, settings.platform_api_key, lenser, 5) for _ in range(10)
            ]
            async with http.get(f"{service.url}/health") as response:
                health = await response.json()
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True)
    assert statuses == [201] * 10
    assert (health["status"], health["broker"]) == ("degraded", False)
    connection, queue = await downstream_queue(settings.amqp_url)
    received: list[str] = []

    async def all_arrived() -> bool:
        await drain(queue, received)
        return set(received) == await deposit_event_ids(db)

    await eventually(all_arrived, timeout=60)
    assert len(received) == len(set(received)) == 10
    await connection.close()
