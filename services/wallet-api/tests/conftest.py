"""wallet-api under test: the real app on a real PostgreSQL database and RabbitMQ vhost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_contracts.events import IntegrationEvent
from lf_messaging import publish
from lf_pg import DatabaseAccess, create_pool
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from wallet_api.app import MIGRATIONS, SCHEMA, create_app
from wallet_api.settings import WalletSettings

API_KEY = "test-platform-key"
INTERNAL = {"X-Platform-Api-Key": API_KEY}


@pytest.fixture
async def settings(database_url: str, amqp_url: str) -> WalletSettings:
    settings = WalletSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="wallet_api",  # serves as the runtime role: on events only INSERT and SELECT
        db_owner_role="wallet_api_owner",  # migrates and rebuilds as the owner
        platform_api_key=API_KEY,
        expiry_interval_seconds=0.2,
    )
    await DatabaseAccess.of(settings, SCHEMA).migrate(MIGRATIONS)
    return settings


@pytest.fixture
async def api(settings: WalletSettings) -> AsyncIterator[TestClient]:
    """The API with its background workers (ledger, relay, consumer, expiry)."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def db(settings: WalletSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the wallet schema, for assertions on read models."""
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=4)
    yield pool
    await pool.close()


class WalletDriver:
    """Calls the API the way execution-proxy, billing and lensers do; returns raw responses."""

    internal = INTERNAL

    def __init__(self, api: TestClient, db: asyncpg.Pool, settings: WalletSettings) -> None:
        self.api, self.db, self.settings = api, db, settings

    async def grant(self, lenser_id: UUID, amount: int, key: str | None = None):
        return await self.api.post(
            f"/internal/wallets/{lenser_id}/grants",
            json={"amount": amount, "reason": "test grant", "idempotencyKey": key or str(uuid4())},
            headers=INTERNAL,
        )

    async def reserve(self, lenser_id: UUID, amount: int, reference_id: str | None = None, **extra: object):
        body = {
            "lenserId": str(lenser_id),
            "amount": amount,
            "referenceId": reference_id or str(uuid4()),
            **extra,
        }
        return await self.api.post("/internal/reservations", json=body, headers=INTERNAL)

    async def capture(self, reservation_id: str, amount: int):
        return await self.api.post(
            f"/internal/reservations/{reservation_id}/capture", json={"amount": amount}, headers=INTERNAL
        )

    async def extend(self, reservation_id: str, ttl_seconds: object):
        return await self.api.post(
            f"/internal/reservations/{reservation_id}/extend",
            json={"ttlSeconds": ttl_seconds},
            headers=INTERNAL,
        )

    async def release(self, reservation_id: str):
        return await self.api.post(f"/internal/reservations/{reservation_id}/release", headers=INTERNAL)

    async def balance(self, lenser_id: UUID) -> dict:
        response = await self.api.get("/wallet/balance", headers=bearer(lenser_id))
        assert response.status == 200, await response.text()
        return (await response.json())["data"]

    async def consumer_ready(self) -> None:
        """Wait until the service consumes its queue: it binds the queue's routing keys before it
        starts consuming, so a message published earlier could be unroutable, hence dropped."""
        connection = await aio_pika.connect(self.settings.amqp_url)
        async with connection:

            async def consuming() -> bool:
                try:
                    queue = await (await connection.channel()).declare_queue(
                        "wallet-api.events", passive=True
                    )
                except aio_pika.exceptions.ChannelClosed:
                    return False
                return queue.declaration_result.consumer_count > 0

            await eventually(consuming)

    async def deliver(self, *messages: tuple[str, IntegrationEvent]) -> None:
        """Publish (message id, event) pairs to the service's exchange; wait until each is handled."""
        before = await self.db.fetchval("SELECT count(*) FROM inbox")
        await self.consumer_ready()
        connection = await aio_pika.connect(self.settings.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            for message_id, event in messages:
                await publish(channel, event, message_id=message_id)

        async def handled() -> bool:
            return await self.db.fetchval("SELECT count(*) FROM inbox") == before + len(messages)

        await eventually(handled)

    async def money_report(self) -> dict:
        response = await self.api.get("/internal/reports/money", headers=INTERNAL)
        assert response.status == 200, await response.text()
        return (await response.json())["data"]

    async def trial_balance(self) -> int:
        return await self.db.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_postings")

    async def caught_up(self, follower: str = "ledger") -> bool:
        """Whether ``follower`` has handled every event in the log."""
        return await self.db.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM events e, follower_checkpoints c WHERE c.name = $1"
            " AND (e.transaction_id::text::bigint, e.position) > (c.transaction_id, c.position))"
            " AND EXISTS (SELECT 1 FROM follower_checkpoints WHERE name = $1)",
            follower,
        )


@pytest.fixture
def wallet(api: TestClient, db: asyncpg.Pool, settings: WalletSettings) -> WalletDriver:
    return WalletDriver(api, db, settings)


@pytest.fixture
def lenser() -> UUID:
    return uuid4()
