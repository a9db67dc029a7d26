"""A job evaluated and worked by the real execution-proxy (its built-in ``local`` provider, no
key), not a fake: the service's request and the proxy's answer are each other's real wire format,
and the settings' default models (``EVAL_MODEL``, ``WORK_MODEL``) exist in its development catalogue.

``service`` funding charges nothing, so no wallet is needed beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy import __main__ as proxy_main
from execution_proxy import app as proxy_app
from execution_proxy.settings import ExecutionSettings
from lf_pg import DatabaseAccess
from lightning_jobs.app import create_app
from lightning_jobs.settings import LightningSettings

API_KEY = "test-platform-key"


@pytest.fixture
async def execution_proxy(database_url: str, amqp_url: str) -> AsyncIterator[TestServer]:
    settings = ExecutionSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="execution_proxy",
        db_owner_role="execution_proxy_owner",
        platform_api_key=API_KEY,
        wallet_api_url="http://127.0.0.1:9",  # never called: nothing here is charged
        seed_catalogue=True,
    )
    await DatabaseAccess.of(settings, proxy_app.SCHEMA).migrate(proxy_app.MIGRATIONS)
    await proxy_main._seed(settings)  # what `serve` does first: the development catalogue
    async with TestServer(proxy_app.create_app(settings)) as server:
        yield server


@pytest.fixture
async def jobs(
    settings: LightningSettings, execution_proxy: TestServer, pricing
) -> AsyncIterator[TestClient]:
    url = str(execution_proxy.make_url("")).rstrip("/")
    configured = settings.model_copy(update={"execution_proxy_url": url, "platform_api_key": API_KEY})
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
