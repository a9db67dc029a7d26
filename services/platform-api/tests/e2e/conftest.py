"""platform-api end to end with no fake between our services: its run workers call the real
execution-proxy (the built-in ``local`` provider, no key), which reserves on and settles with the
real wallet-api. All three in-process on the test's database (each in its own schema, as its own
role) and vhost (lf_testing.services); ``api`` and ``platform`` are the parent conftest's, pointed
at the proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_pg import create_pool
from lf_testing import services, sse
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from platform_api.app import create_app
from platform_api.settings import PlatformSettings

ENDED = ("succeeded", "failed", "canceled", "timed_out")


@pytest.fixture
async def wallet(settings: PlatformSettings) -> AsyncIterator[TestServer]:
    async with services.wallet_api(
        settings.database_url, settings.amqp_url, platform_api_key=settings.platform_api_key or ""
    ) as server:
        yield server


@pytest.fixture
async def execution_proxy(settings: PlatformSettings, wallet: TestServer) -> AsyncIterator[TestServer]:
    async with services.execution_proxy(
        settings.database_url,
        settings.amqp_url,
        platform_api_key=settings.platform_api_key or "",
        wallet_api_url=services.url_of(wallet),
    ) as server:
        yield server


@pytest.fixture
async def api(settings: PlatformSettings, execution_proxy: TestServer) -> AsyncIterator[TestClient]:
    configured = settings.model_copy(update={"execution_proxy_url": services.url_of(execution_proxy)})
    async with TestClient(TestServer(create_app(configured))) as client:
        yield client


@pytest.fixture
async def executions(settings: PlatformSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on execution-proxy's schema, as its runtime role: what the proxy recorded."""
    pool = await create_pool(
        settings.database_url, "execution", role="execution_proxy", min_size=1, max_size=2
    )
    yield pool
    await pool.close()


class Wallet:
    """wallet-api as its callers use it: grants on its internal route, the lenser's own view."""

    def __init__(self, server: TestServer, api_key: str) -> None:
        self.server, self.api_key = server, api_key

    async def fund(self, lenser: UUID, credits: int) -> None:
        await services.grant(self.server, lenser, credits, platform_api_key=self.api_key)

    async def get(self, path: str, lenser: UUID) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.server.make_url(path), headers=bearer(lenser)) as response,
        ):
            answer = await response.json()
            assert response.status == 200, answer
            return answer

    async def balance(self, lenser: UUID) -> dict[str, Any]:
        return (await self.get("/wallet/balance", lenser))["data"]

    async def transactions(self, lenser: UUID) -> list[dict[str, Any]]:
        return (await self.get("/wallet/transactions", lenser))["data"]


@pytest.fixture
def lenser_wallet(wallet: TestServer, settings: PlatformSettings) -> Wallet:
    return Wallet(wallet, settings.platform_api_key or "")


@pytest.fixture
def run_to_end(api: TestClient):
    """``await run_to_end(lens_id, lenser, body)``: executes the lens (``body`` as
    ``POST /v1/lenses/{id}/execute`` takes it); the run once it has ended, as ``GET /v1/runs/{id}``
    answers it."""

    async def run(lens_id: str, lenser: UUID, body: dict[str, Any]) -> dict[str, Any]:
        response = await api.post(f"/v1/lenses/{lens_id}/execute", json=body, headers=bearer(lenser))
        assert response.status == 202, await response.text()
        run_id = (await response.json())["data"]["runId"]
        run: dict[str, Any] = {}

        async def ended() -> bool:
            answer = await (await api.get(f"/v1/runs/{run_id}", headers=bearer(lenser))).json()
            run.update(answer["data"])
            return run["status"] in ENDED

        await eventually(ended, timeout=30)
        return run

    return run


@pytest.fixture
def run_events(api: TestClient):
    """``await run_events(run_id, lenser)``: an ended run's events as its stream
    (``GET /v1/runs/{id}/events``) replays them, ``(eventType, payload)`` each."""

    async def read(run_id: str, lenser: UUID) -> list[tuple[str, dict[str, Any]]]:
        response = await api.get(f"/v1/runs/{run_id}/events", headers=bearer(lenser))
        assert response.status == 200, await response.text()
        frames = await sse.read_all(response)
        return [(f.data["eventType"], f.data["payload"]) for f in frames if f.name != "done"]

    return read
