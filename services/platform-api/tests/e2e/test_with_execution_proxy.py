"""A lens run executed by the real execution-proxy (its built-in ``local`` provider, no key), not
a fake: the run worker's request and the proxy's answer are each other's real wire format.

Funding ``user_byok_local`` reaches the proxy as its ``service`` funding (nothing charged), so no
wallet is needed beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy import __main__ as proxy_main
from execution_proxy import app as proxy_app
from execution_proxy.settings import ExecutionSettings
from lf_pg import DatabaseAccess
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from platform_api.app import create_app
from platform_api.settings import PlatformSettings

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
async def platform(settings: PlatformSettings, execution_proxy: TestServer) -> AsyncIterator[TestClient]:
    url = str(execution_proxy.make_url("")).rstrip("/")
    configured = settings.model_copy(update={"execution_proxy_url": url, "platform_api_key": API_KEY})
    async with TestClient(TestServer(create_app(configured))) as client:
        yield client


async def test_a_lens_run_on_the_local_provider_succeeds_with_its_output(platform: TestClient, lenser: UUID):
    lens = {
        "name": "hello",
        "template": "Say hello to {{who}}",
        "parameters": [{"name": "who", "type": "string", "required": True}],
        "modelId": "local-small",
    }
    response = await platform.post("/v1/lenses", json=lens, headers=bearer(lenser))
    lens_id = (await response.json())["data"]["id"]
    body = {"params": {"who": "owls"}, "fundingSource": "user_byok_local"}
    response = await platform.post(f"/v1/lenses/{lens_id}/execute", json=body, headers=bearer(lenser))
    assert response.status == 202, await response.text()
    run_id = (await response.json())["data"]["runId"]
    run: dict = {}

    async def ended() -> bool:
        answer = await (await platform.get(f"/v1/runs/{run_id}", headers=bearer(lenser))).json()
        run.update(answer["data"])
        return run["status"] not in ("queued", "running")

    await eventually(ended, timeout=30)
    assert run["status"] == "succeeded", (run["errorMessage"], run)
    assert run["providerKey"] == "local" and run["modelId"] == "local-small"
    assert run["creditCost"] == 0 and run["billingStatus"] == "byok"
    assert run["tokenOutput"] > 0
    [artifact] = run["artifacts"]
    assert artifact["isPrimaryOutput"] and artifact["contentText"]
