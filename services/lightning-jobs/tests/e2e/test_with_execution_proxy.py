"""A job evaluated and worked by the real execution-proxy (its built-in ``local`` provider, no
key), not a fake: the service's request and the proxy's answer are each other's real wire format,
and the settings' default models (``EVAL_MODEL``, ``WORK_MODEL``) exist in its development catalogue.

``service`` funding charges nothing, so no wallet is needed beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing import services
from lightning_jobs.app import create_app
from lightning_jobs.settings import LightningSettings

API_KEY = "test-platform-key"


@pytest.fixture
async def execution_proxy(database_url: str, amqp_url: str) -> AsyncIterator[TestServer]:
    async with services.execution_proxy(database_url, amqp_url, platform_api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def jobs(
    settings: LightningSettings, execution_proxy: TestServer, pricing
) -> AsyncIterator[TestClient]:
    configured = settings.model_copy(
        update={"execution_proxy_url": services.url_of(execution_proxy), "platform_api_key": API_KEY}
    )
    async with TestClient(TestServer(create_app(configured, pricing=pricing))) as client:
        yield client


async def test_a_job_on_the_local_provider_completes_with_its_cost_ledger(jobs, driver, ledger):
    lightning = driver(jobs)

    done = await lightning.completed_job("summarise the lightning network")

    assert done["state"] == "complete", done
    assert done["result"]
    assert done["costLedger"]["actualOutputTokens"] > 0
    assert done["costLedger"]["totalTokens"] == (
        done["costLedger"]["actualInputTokens"] + done["costLedger"]["actualOutputTokens"]
    )
