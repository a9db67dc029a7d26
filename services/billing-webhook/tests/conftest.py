"""billing-webhook under test: the real app on a real PostgreSQL database and RabbitMQ vhost, with
a fake LemonSqueezy on 127.0.0.1."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from billing_webhook.app import MIGRATIONS, RELAY, SCHEMA, create_app
from billing_webhook.settings import BillingSettings
from lf_pg import DatabaseAccess, create_pool
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.fakes.lemonsqueezy import FakeLemonSqueezy
from lf_testing.waiting import eventually

API_KEY = "test-platform-key"
INTERNAL = {"X-Platform-Api-Key": API_KEY}
SECRET = "test-webhook-secret"
LEMONSQUEEZY_KEY = "test-lemonsqueezy-key"
STORE_ID = "4242"


@pytest.fixture
async def lemonsqueezy() -> AsyncIterator[FakeLemonSqueezy]:
    fake = await FakeLemonSqueezy(api_key=LEMONSQUEEZY_KEY).start()
    yield fake
    await fake.close()


@pytest.fixture
async def settings(database_url: str, amqp_url: str, lemonsqueezy: FakeLemonSqueezy) -> BillingSettings:
    settings = BillingSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="billing_webhook",  # serves as the runtime role: on events only INSERT and SELECT
        db_owner_role="billing_webhook_owner",  # migrates and rebuilds as the owner
        platform_api_key=API_KEY,
        lemonsqueezy_webhook_secret=SECRET,
        lemonsqueezy_api_url=lemonsqueezy.url,
        lemonsqueezy_api_key=LEMONSQUEEZY_KEY,
        lemonsqueezy_store_id=STORE_ID,
        lemonsqueezy_timeout_seconds=0.5,
    )
    await DatabaseAccess.of(settings, SCHEMA).migrate(MIGRATIONS)
    return settings


@pytest.fixture
async def api(settings: BillingSettings) -> AsyncIterator[TestClient]:
    """The API with its background workers (delivery processor, relay, expiry)."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def db(settings: BillingSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the billing schema, for assertions on the log and the read models."""
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=4)
    yield pool
    await pool.close()


class BillingDriver:
    """Calls the API the way wallet-api, operators and LemonSqueezy do; returns raw responses."""

    internal = INTERNAL

    def __init__(self, api: TestClient, db: asyncpg.Pool, settings: BillingSettings) -> None:
        self.api, self.db, self.settings = api, db, settings

    async def pack(self, variant_id: str = "v-100", credits: int = 100, price_cents: int = 500, **extra: Any):
        body = {"productId": "p-1", "name": f"{credits} credits", "priceCents": price_cents, **extra}
        response = await self.api.put(
            f"/internal/credit-packs/{variant_id}", json={"creditsGranted": credits, **body}, headers=INTERNAL
        )
        assert response.status == 200, await response.text()
        return response

    async def checkout(self, lenser: UUID, variant_id: str = "v-100", email: str | None = None):
        return await self.api.post(
            "/internal/checkouts",
            json={"lenserId": str(lenser), "variantId": variant_id, "email": email},
            headers=INTERNAL,
        )

    async def session(self, lenser: UUID, variant_id: str = "v-100") -> str:
        """A checkout session id, as LemonSqueezy hands it back in ``custom_data``."""
        response = await self.checkout(lenser, variant_id)
        assert response.status == 201, await response.text()
        return (await response.json())["data"]["sessionId"]

    async def deliver(self, delivery: dict[str, Any] | bytes, *, secret: str = SECRET, **headers: str):
        body = delivery if isinstance(delivery, bytes) else ls.encode(delivery)
        return await self.api.post(
            "/webhook/lemonsqueezy", data=io.BytesIO(body), headers={**ls.headers(body, secret), **headers}
        )

    async def accepted(self, delivery: dict[str, Any] | bytes) -> dict[str, Any]:
        response = await self.deliver(delivery)
        assert response.status == 200, await response.text()
        return (await response.json())["data"]

    async def settled(self) -> None:
        """Every recorded delivery processed (or failed)."""

        async def nothing_pending() -> bool:
            return not await self.db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending')"
            )

        await eventually(nothing_pending)

    async def caught_up(self, follower: str) -> bool:
        """Whether ``follower`` has handled every event in the log."""
        return await self.db.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM events e, follower_checkpoints c WHERE c.name = $1"
            " AND (e.transaction_id::text::bigint, e.position) > (c.transaction_id, c.position))"
            " AND EXISTS (SELECT 1 FROM follower_checkpoints WHERE name = $1)",
            follower,
        )

    async def published_all(self) -> None:
        """Deliveries processed and everything they caused handed to RabbitMQ."""
        await self.settled()

        async def relayed() -> bool:
            return await self.caught_up(RELAY)

        await eventually(relayed)

    async def delivery(self, delivery_id: str) -> asyncpg.Record:
        return await self.db.fetchrow("SELECT * FROM deliveries WHERE delivery_id = $1", delivery_id)

    async def events(self, type_: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch("SELECT data FROM events WHERE type = $1 ORDER BY position", type_)
        return [r["data"] for r in rows]

    async def delivery_streams(self) -> int:
        return await self.db.fetchval("SELECT count(*) FROM streams WHERE stream_id LIKE 'delivery-%'")


@pytest.fixture
def billing(api: TestClient, db: asyncpg.Pool, settings: BillingSettings) -> BillingDriver:
    return BillingDriver(api, db, settings)


@pytest.fixture
def lenser() -> UUID:
    return uuid4()


@dataclass(frozen=True)
class Message:
    routing_key: str
    message_id: str
    body: dict[str, Any]


class Published:
    """What billing published, as another service's queue bound to ``billing.#`` receives it."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue
        self.messages: list[Message] = []

    async def drain(self) -> list[Message]:
        while (message := await self.queue.get(fail=False)) is not None:
            await message.ack()
            self.messages.append(
                Message(message.routing_key or "", message.message_id or "", json.loads(message.body))
            )
        return self.messages

    def of(self, routing_key: str) -> list[Message]:
        return [m for m in self.messages if m.routing_key == routing_key]

    async def wait_for(self, routing_key: str, count: int, timeout: float = 10.0) -> list[Message]:
        async def arrived() -> bool:
            await self.drain()
            return len(self.of(routing_key)) >= count

        await eventually(arrived, timeout=timeout)
        return self.of(routing_key)


@pytest.fixture
async def published(settings: BillingSettings) -> AsyncIterator[Published]:
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange("lf.events", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "billing.#")
    yield Published(queue)
    await connection.close()
