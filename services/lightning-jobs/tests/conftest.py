"""lightning-jobs under test: the real app on a real PostgreSQL database, its AI at a fake
execution-proxy, its Lightning the stub backend (invoices paid through the dev route), its pricing a
fixed one (``FIXED_PRICING``, a test helper behind the ``Pricing`` interface; the app's own
cost-based pricing is tested in ``integration/test_cost_based_pricing.py``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_pg import DatabaseAccess, create_pool
from lf_testing.fakes.execution_proxy import FakeExecutionProxy
from lf_testing.waiting import eventually
from lightning_jobs.app import MIGRATIONS, SCHEMA, create_app
from lightning_jobs.application.pricing import ActualCost, Pricing, WorkQuote
from lightning_jobs.application.queries import JobQueries
from lightning_jobs.settings import LightningSettings

EVAL_FEE_SATS = 10
WORK_FEE_SATS = 100
BTC_PRICE_USD = Decimal(100_000)
SAT_USD = BTC_PRICE_USD / 100_000_000


async def _work_fee(request: str, model: str) -> WorkQuote:
    return WorkQuote(WORK_FEE_SATS, WORK_FEE_SATS * SAT_USD, Decimal("20"), BTC_PRICE_USD, model=model)


def _actual_cost(quote: WorkQuote, input_tokens: int, output_tokens: int) -> ActualCost:
    """One sat a token: a short answer leaves most of the work fee to refund."""
    sats = input_tokens + output_tokens
    return ActualCost(sats * SAT_USD / 2, sats * SAT_USD, sats)


FIXED_PRICING = Pricing(EVAL_FEE_SATS, _work_fee, _actual_cost)
FINISHED = ("rejected", "awaiting_work_payment", "complete", "failed")


@pytest.fixture
def pricing() -> Pricing:
    return FIXED_PRICING


@pytest.fixture
async def proxy() -> AsyncIterator[FakeExecutionProxy]:
    async with FakeExecutionProxy(api_key="test-platform-key") as fake:
        yield fake


@pytest.fixture
async def settings(database_url: str, amqp_url: str, proxy: FakeExecutionProxy) -> LightningSettings:
    settings = LightningSettings(
        env_mode="development",
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="lightning_jobs",  # serves as the runtime role: on events only INSERT and SELECT
        db_owner_role="lightning_jobs_owner",  # migrates as the owner
        platform_api_key="test-platform-key",
        execution_proxy_url=proxy.url,
        watch_interval_seconds=0.1,
        ai_timeout_seconds=10,
    )
    await DatabaseAccess.of(settings, SCHEMA).migrate(MIGRATIONS)
    return settings


@pytest.fixture
async def api(settings: LightningSettings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, pricing=FIXED_PRICING))) as client:
        yield client


@pytest.fixture
async def db(settings: LightningSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the lightning schema, for assertions on read models."""
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def ledger(db: asyncpg.Pool) -> AsyncIterator[JobQueries]:
    """The sats ledger; its trial balance is zero at the end of the test that uses it."""
    queries = JobQueries(db)
    yield queries
    assert await queries.trial_balance() == 0


class LightningDriver:
    """Calls the API the way a seed 002 client does."""

    def __init__(self, api: TestClient) -> None:
        self.api = api

    @staticmethod
    def payment_hash_of(invoice: str) -> str:
        """A stub invoice says its payment hash (``lnbcrt<sats>stub1<hash>``)."""
        found = re.fullmatch(r"lnbcrt\d+stub1([0-9a-f]{64})", invoice)
        assert found, invoice
        return found.group(1)

    async def create_job(self, request: str = "write a haiku about sats") -> dict[str, Any]:
        response = await self.api.post("/api/jobs", json={"request": request})
        assert response.status == 201, await response.text()
        return await response.json()

    async def job(self, job_id: str | UUID) -> dict[str, Any]:
        response = await self.api.get(f"/api/jobs/{job_id}")
        assert response.status == 200, await response.text()
        return await response.json()

    async def pay(self, invoice: dict[str, Any]) -> None:
        response = await self.api.post(f"/api/dev/stub/pay/{invoice['paymentHash']}")
        assert response.status == 200, await response.text()

    async def until(self, job_id: str, states: tuple[str, ...] = FINISHED) -> dict[str, Any]:
        """Poll as a client does until the job is in one of ``states``; its view then."""
        seen: dict[str, Any] = {}

        async def there() -> bool:
            seen.update(await self.job(job_id))
            return seen["state"] in states

        await eventually(there, timeout=15)
        return seen

    async def completed_job(self, request: str = "write a haiku about sats") -> dict[str, Any]:
        created = await self.create_job(request)
        await self.pay(created["evalInvoice"])
        quoted = await self.until(created["jobId"])
        assert quoted["state"] == "awaiting_work_payment", quoted
        await self.pay(quoted["workInvoice"])
        return await self.until(created["jobId"], ("complete", "failed"))

    async def refund(self, job_id: str, invoice: Any):
        return await self.api.post(f"/api/jobs/{job_id}/refund", json={"invoice": invoice})


@pytest.fixture
def lightning(api: TestClient) -> LightningDriver:
    return LightningDriver(api)


@pytest.fixture
def driver() -> type[LightningDriver]:
    """The driver's class, for a test that drives an app of its own."""
    return LightningDriver
