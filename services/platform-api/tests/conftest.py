"""platform-api under test: the real app on a real PostgreSQL database and RabbitMQ vhost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_pg import DatabaseAccess, create_pool
from lf_testing.tokens import bearer
from platform_api.app import MIGRATIONS, SCHEMA, create_app
from platform_api.settings import PlatformSettings


@pytest.fixture
async def settings(database_url: str, amqp_url: str) -> PlatformSettings:
    settings = PlatformSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="platform_api",  # serves as the runtime role: on events only INSERT and SELECT
        db_owner_role="platform_api_owner",  # migrates and rebuilds as the owner
        platform_api_key="test-platform-key",
    )
    await DatabaseAccess.of(settings, SCHEMA).migrate(MIGRATIONS)
    return settings


@pytest.fixture
async def api(settings: PlatformSettings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
async def db(settings: PlatformSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the platform schema, for assertions on read models."""
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=2)
    yield pool
    await pool.close()


def a_lens(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Summarise",
        "template": "Summarise {{topic}} in {{ words }} words",
        "parameters": [
            {"name": "topic", "type": "string", "required": True},
            {"name": "words", "type": "number", "default": 50},
        ],
        "modelId": "local-small",
    }
    return {**body, **changes}


class PlatformDriver:
    """Calls the API the way a lenser's client does; returns raw responses."""

    def __init__(self, api: TestClient) -> None:
        self.api = api

    a_lens = staticmethod(a_lens)

    async def post(self, path: str, body: Any, lenser: UUID):
        return await self.api.post(path, json=body, headers=bearer(lenser))

    async def get(self, path: str, lenser: UUID, **params: Any):
        return await self.api.get(path, params=params, headers=bearer(lenser))

    async def lens(self, lenser: UUID, **changes: Any) -> dict[str, Any]:
        """A new lens of ``lenser``'s, as the 201 answered it."""
        response = await self.post("/v1/lenses", a_lens(**changes), lenser)
        assert response.status == 201, await response.text()
        return (await response.json())["data"]

    async def workflow(self, lenser: UUID, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post("/v1/workflows", body, lenser)
        assert response.status == 201, await response.text()
        return (await response.json())["data"]


@pytest.fixture
def platform(api: TestClient) -> PlatformDriver:
    return PlatformDriver(api)


@pytest.fixture
def lenser() -> UUID:
    return uuid4()


@pytest.fixture
def other_lenser() -> UUID:
    return uuid4()
