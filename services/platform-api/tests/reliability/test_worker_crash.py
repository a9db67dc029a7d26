"""A run worker SIGKILLed mid-node: the run still finishes, and the node is charged once.

platform-api runs as real processes (``python -m platform_api serve``: relay and run workers); the
run is queued through an in-process app without background work, and executed by the processes
against a fake execution-proxy whose execution outlives the process that asked for it (as a
provider's does)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing.fakes.execution_proxy import FakeExecutionProxy
from lf_testing.processes import ServiceProcess
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from platform_api.app import create_app
from platform_api.settings import PlatformSettings

pytestmark = pytest.mark.slow


@pytest.fixture
async def queue_only(settings: PlatformSettings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, background=False))) as client:
        yield client


def worker(database_url: str, amqp_url: str, proxy: FakeExecutionProxy) -> ServiceProcess:
    return ServiceProcess(
        "platform_api",
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "DB_ROLE": "platform_api",
            "PLATFORM_API_KEY": "test-platform-key",
            "EXECUTION_PROXY_URL": proxy.url,
        },
    )


async def test_a_worker_killed_mid_node_leaves_the_run_to_another_which_charges_it_once(
    database_url: str, amqp_url: str, queue_only: TestClient, lenser: UUID
):
    async with FakeExecutionProxy(api_key="test-platform-key") as proxy:
        proxy.delay = 3.0
        first = await worker(database_url, amqp_url, proxy).start()
        try:
            lens = await queue_only.post(
                "/v1/lenses",
                json={
                    "name": "l",
                    "template": "Say {{text}}",
                    "parameters": [{"name": "text", "type": "string"}],
                    "modelId": "local-small",
                },
                headers=bearer(lenser),
            )
            lens_id = (await lens.json())["data"]["id"]
            accepted = await queue_only.post(
                f"/v1/lenses/{lens_id}/execute", json={"params": {"text": "hi"}}, headers=bearer(lenser)
            )
            run_id = (await accepted.json())["data"]["runId"]

            async def executing() -> bool:
                return proxy.in_flight == 1

            await eventually(executing, timeout=30)
            first.kill()
        finally:
            first.stop()
        second = await worker(database_url, amqp_url, proxy).start()
        try:

            async def succeeded() -> bool:
                response = await queue_only.get(f"/v1/runs/{run_id}", headers=bearer(lenser))
                return (await response.json())["data"]["status"] == "succeeded"

            await eventually(succeeded, timeout=60)
        finally:
            second.stop()
        assert proxy.charges == {f"{run_id}:lens:1": 1}
        assert [call["referenceId"] for call in proxy.calls] == [f"{run_id}:lens:1"] * 2
        response = await queue_only.get(f"/v1/runs/{run_id}", headers=bearer(lenser))
        assert (await response.json())["data"]["creditCost"] == 3
