"""execution-proxy under test: the real app beside a real wallet-api, on one PostgreSQL database
(each in its own schema, as its own role) and one RabbitMQ vhost. Providers other than the built-in
``local`` are fake servers on 127.0.0.1 (lf_testing.fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy.app import MIGRATIONS, SCHEMA, create_app
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.settings import ExecutionSettings
from lf_pg import DatabaseAccess, create_pool
from lf_testing import services
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from wallet_api import app as wallet_app

API_KEY = "test-platform-key"
INTERNAL = {"X-Platform-Api-Key": API_KEY}
LOCAL = {"provider": "local", "model": "local-small"}


@pytest.fixture
async def wallet(
    request: pytest.FixtureRequest, database_url: str, amqp_url: str
) -> AsyncIterator[TestServer]:
    """wallet-api with its consumer, ledger and expiry loop: where reservations and charges land.
    Indirectly parametrized with a dict, its settings are changed by it
    (``@pytest.mark.parametrize("wallet", [{"reservation_max_lifetime_seconds": 3}], indirect=True)``)."""
    async with services.wallet_api(
        database_url,
        amqp_url,
        platform_api_key=API_KEY,
        expiry_interval_seconds=0.2,
        **getattr(request, "param", {}),
    ) as server:
        yield server


@pytest.fixture
async def settings(
    request: pytest.FixtureRequest, database_url: str, amqp_url: str, wallet: TestServer
) -> ExecutionSettings:
    """Indirectly parametrized with a dict, changed by it, as ``wallet`` is."""
    settings = ExecutionSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="execution_proxy",  # serves as the runtime role: on events only INSERT and SELECT
        db_owner_role="execution_proxy_owner",
        platform_api_key=API_KEY,
        wallet_api_url=services.url_of(wallet),
        **getattr(request, "param", {}),
    )
    await DatabaseAccess.of(settings, SCHEMA).migrate(MIGRATIONS)
    return settings


@pytest.fixture
async def db(settings: ExecutionSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the execution schema, as the runtime role."""
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def wallet_db(settings: ExecutionSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(
        settings.database_url, wallet_app.SCHEMA, role="wallet_api", min_size=1, max_size=2
    )
    yield pool
    await pool.close()


@pytest.fixture
async def catalogue(db: asyncpg.Pool, settings: ExecutionSettings) -> CatalogueAdmin:
    """The development catalogue, seeded as ``serve`` seeds it."""
    admin = CatalogueAdmin(db, credits_per_usd=settings.credits_per_usd)
    await admin.seed()
    return admin


@pytest.fixture
async def api(settings: ExecutionSettings, catalogue: CatalogueAdmin) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
def lenser() -> UUID:
    return uuid4()


class Driver:
    """Calls execution-proxy as lensers and services do, and reads the wallet as they see it."""

    internal = INTERNAL

    def __init__(self, api: TestClient, wallet: TestServer, wallet_db: asyncpg.Pool) -> None:
        self.api, self.wallet, self.wallet_db = api, wallet, wallet_db

    async def fund(self, lenser_id: UUID, credits: int) -> None:
        await services.grant(self.wallet, lenser_id, credits, platform_api_key=API_KEY)

    async def execute(self, lenser_id: UUID, route: str = "/execute/wallet", **body: Any):
        payload = {**LOCAL, "messages": [{"role": "user", "content": "Hello there"}], **body}
        return await self.api.post(route, json=payload, headers=bearer(lenser_id))

    async def balance(self, lenser_id: UUID) -> dict[str, Any]:
        row = await self.wallet_db.fetchrow("SELECT * FROM balances WHERE lenser_id = $1", lenser_id)
        assert row is not None
        return dict(row)

    async def settled(self, lenser_id: UUID) -> dict[str, Any]:
        """The balance once no reservation of the lenser is open any more (settlements relayed)."""

        async def no_open_reservation() -> bool:
            return (
                await self.wallet_db.fetchval(
                    "SELECT count(*) FROM reservations WHERE lenser_id = $1 AND status = 'reserved'",
                    lenser_id,
                )
                == 0
            )

        await eventually(no_open_reservation, timeout=10)
        return await self.balance(lenser_id)

    async def trial_balance(self) -> int:
        """The sum of every posting of the wallet's ledger, once its follower has read the whole log."""

        async def ledger_caught_up() -> bool:
            return await self.wallet_db.fetchval(
                "SELECT NOT EXISTS (SELECT 1 FROM events e, follower_checkpoints c WHERE c.name = 'ledger'"
                " AND (e.transaction_id::text::bigint, e.position) > (c.transaction_id, c.position))"
            )

        await eventually(ledger_caught_up, timeout=10)
        return await self.wallet_db.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_postings")


@pytest.fixture
def driver(api: TestClient, wallet: TestServer, wallet_db: asyncpg.Pool) -> Driver:
    return Driver(api, wallet, wallet_db)
