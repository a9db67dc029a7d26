"""A job evaluated and worked by the real execution-proxy (its built-in ``local`` provider, no
key), not a fake: the service's request and the proxy's answer are each other's real wire format,
and the settings' default models (``EVAL_MODEL``, ``WORK_MODEL``) exist in its development catalogue.

``service`` funding charges nothing, so no wallet is needed beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing import services
from lf_testing.fakes.openai import FakeOpenAI
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


async def test_a_step_the_provider_failed_is_retried_under_a_new_reference_and_the_job_completes(
    settings, database_url, amqp_url, pricing, driver, ledger
):
    """execution-proxy records the failed execution and answers its reference with that failure
    for ever: the job's next claim of the step asks under a new one, and the job completes."""
    openai = await FakeOpenAI(api_key="sk-test").start()
    openai.fail_with(500, times=1)
    try:
        async with services.execution_proxy(
            database_url,
            amqp_url,
            platform_api_key=API_KEY,
            openai_api_url=openai.url,
            openai_api_key="sk-test",
            provider_retries=0,  # the provider's 500 is execution-proxy's answer, not retried inside
        ) as proxy:
            configured = settings.model_copy(
                update={
                    "execution_proxy_url": services.url_of(proxy),
                    "platform_api_key": API_KEY,
                    "eval_model": "gpt-4o-mini",
                    "work_model": "gpt-4o-mini",
                    "step_lease_seconds": 0.5,
                }
            )
            async with TestClient(TestServer(create_app(configured, pricing=pricing))) as jobs:
                done = await driver(jobs).completed_job("summarise the lightning network")
    finally:
        await openai.stop()

    assert done["state"] == "complete", done
    job_id = done["jobId"]
    connection = await asyncpg.connect(database_url)
    try:
        executions = await connection.fetch(
            "SELECT reference_id, status FROM execution.executions WHERE reference_id LIKE $1",
            f"lightning:job:{job_id}:%",
        )
    finally:
        await connection.close()
    assert {(row["reference_id"], row["status"]) for row in executions} == {
        (f"lightning:job:{job_id}:eval", "failed"),
        (f"lightning:job:{job_id}:eval:2", "succeeded"),
        (f"lightning:job:{job_id}:work", "succeeded"),
    }
