"""Runs executed by the real execution-proxy (its built-in ``local`` provider, no key, streaming
at ``LOCAL_TOKEN_DELAY_MS`` a piece: a slow streaming provider), not a fake: the run worker's
requests (stream, cancel) and the proxy's answers are each other's real wire format.

Funding ``user_byok_local`` reaches the proxy as its ``service`` funding (nothing charged);
``platform_credit`` runs are charged to the lenser's wallet in the real wallet-api beside it, with
``local-small`` priced at 1 credit per output token so that a partial charge is visible."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy import __main__ as proxy_main
from execution_proxy import app as proxy_app
from execution_proxy.settings import ExecutionSettings
from lf_pg import DatabaseAccess
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually, queue_declared
from platform_api.app import create_app
from platform_api.settings import PlatformSettings
from wallet_api import app as wallet_app
from wallet_api.settings import WalletSettings

API_KEY = "test-platform-key"
INTERNAL = {"X-Platform-Api-Key": API_KEY}
LOCAL_TOKEN_DELAY_MS = 60


@pytest.fixture
async def wallet(database_url: str, amqp_url: str) -> AsyncIterator[TestServer]:
    settings = WalletSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="wallet_api",
        db_owner_role="wallet_api_owner",
        platform_api_key=API_KEY,
    )
    await DatabaseAccess.of(settings, wallet_app.SCHEMA).migrate(wallet_app.MIGRATIONS)
    async with TestServer(wallet_app.create_app(settings)) as server:
        await queue_declared(amqp_url, "wallet-api.events")
        yield server


@pytest.fixture
async def execution_proxy(database_url: str, amqp_url: str, wallet: TestServer) -> AsyncIterator[TestServer]:
    settings = ExecutionSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="execution_proxy",
        db_owner_role="execution_proxy_owner",
        platform_api_key=API_KEY,
        wallet_api_url=str(wallet.make_url("")).rstrip("/"),
        seed_catalogue=True,
        local_token_delay_ms=LOCAL_TOKEN_DELAY_MS,
    )
    await DatabaseAccess.of(settings, proxy_app.SCHEMA).migrate(proxy_app.MIGRATIONS)
    await proxy_main._seed(settings)  # what `serve` does first: the development catalogue
    async with TestServer(proxy_app.create_app(settings)) as server:
        yield server


async def internal(server: TestServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.make_url(path), json=body, headers=INTERNAL) as response,
    ):
        return response.status, await response.json()


@pytest.fixture
async def funded(wallet: TestServer, execution_proxy: TestServer, lenser: UUID) -> UUID:
    """``lenser`` with credits, and ``local-small`` at 1 credit per output token (0 per input)."""
    grant = {"amount": 1_000_000, "reason": "test", "idempotencyKey": str(uuid4())}
    status, answer = await internal(wallet, f"/internal/wallets/{lenser}/grants", grant)
    assert status == 201, answer
    price = {"modelKey": "local-small", "inputPer1k": "0", "outputPer1k": "10"}
    status, answer = await internal(execution_proxy, "/internal/catalogue/prices", price)
    assert status == 201, answer
    await asyncio.sleep(1.2)  # the proxy's catalogue cache (1 s)
    return lenser


@pytest.fixture
async def platform(settings: PlatformSettings, execution_proxy: TestServer) -> AsyncIterator[TestClient]:
    url = str(execution_proxy.make_url("")).rstrip("/")
    configured = settings.model_copy(
        update={"execution_proxy_url": url, "platform_api_key": API_KEY, "node_delta_interval_ms": 200}
    )
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


async def a_lens(platform: TestClient, lenser: UUID) -> str:
    lens = {
        "name": "hello",
        "template": "Say hello to {{who}}",
        "parameters": [{"name": "who", "type": "string", "required": True}],
        "modelId": "local-small",
    }
    response = await platform.post("/v1/lenses", json=lens, headers=bearer(lenser))
    return (await response.json())["data"]["id"]


async def run_lens(platform: TestClient, lenser: UUID, lens_id: str, funding: str) -> str:
    body = {"params": {"who": "owls"}, "fundingSource": funding}
    response = await platform.post(f"/v1/lenses/{lens_id}/execute", json=body, headers=bearer(lenser))
    assert response.status == 202, await response.text()
    return (await response.json())["data"]["runId"]


async def finished(platform: TestClient, lenser: UUID, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = {}

    async def ended() -> bool:
        answer = await (await platform.get(f"/v1/runs/{run_id}", headers=bearer(lenser))).json()
        run.update(answer["data"])
        return run["status"] not in ("queued", "running")

    await eventually(ended, timeout=60)
    return run


async def run_events(db: asyncpg.Pool, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await db.fetch(
        "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version", f"run-{run_id}"
    )
    return [(r["type"], r["data"]) for r in rows]


async def test_a_streamed_node_shows_its_text_over_sse_as_deltas_that_make_its_output(
    platform: TestClient, lenser: UUID
):
    run_id = await run_lens(platform, lenser, await a_lens(platform, lenser), "user_byok_local")
    response = await platform.get(f"/v1/runs/{run_id}/events", headers=bearer(lenser))
    seen: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            seen.append((name, json.loads(line.partition(":")[2])))
            if name == "done":
                break
    deltas = [data["payload"]["delta"] for event, data in seen if event == "node.stream.delta"]
    [completed] = [data["payload"] for event, data in seen if event == "node.completed"]
    assert len(deltas) >= 3 and "".join(deltas) == completed["output"]
    assert seen[-1][1]["status"] == "succeeded"


async def test_cancel_mid_node_charges_what_the_proxy_recorded_for_the_reference_less_than_a_full_run(
    platform: TestClient, funded: UUID, execution_proxy: TestServer, db: asyncpg.Pool
):
    lenser = funded
    lens_id = await a_lens(platform, lenser)
    run_id = await run_lens(platform, lenser, lens_id, "platform_credit")

    async def streaming() -> bool:
        return any(t == "NodeStreamDelta" for t, _ in await run_events(db, run_id))

    await eventually(streaming, timeout=30)
    response = await platform.post(f"/v1/runs/{run_id}/cancel", headers=bearer(lenser))
    answer = (await response.json())["data"]
    assert answer["status"] == "running" and answer["cancelRequested"] is True
    run = await finished(platform, lenser, run_id)
    assert run["status"] == "canceled" and run["errorCode"] == "cancelled_by_user"
    events = await run_events(db, run_id)
    [cancelled] = [data for t, data in events if t == "NodeCancelled"]
    reference = {"funding": "platform_credit", "lenserId": str(lenser), "referenceId": f"{run_id}:lens:1"}
    status, record = await internal(execution_proxy, "/internal/executions/cancel", reference)
    assert status == 200 and record["data"]["state"] == "cancelled"  # asked again: the same answer
    charged = record["data"]["execution"]["creditsCharged"]
    assert cancelled["credits"] == charged == run["creditCost"] and run["billingStatus"] == "charged"
    full = await finished(platform, lenser, await run_lens(platform, lenser, lens_id, "platform_credit"))
    assert full["status"] == "succeeded" and 0 < charged < full["creditCost"]


async def test_a_deadline_cuts_a_streaming_node_which_is_charged_what_it_used(
    platform: TestClient, funded: UUID, execution_proxy: TestServer, db: asyncpg.Pool
):
    lenser = funded
    lens_id = await a_lens(platform, lenser)
    workflow = {
        "name": "slow",
        "nodes": [{"id": "a", "lensId": lens_id, "label": "a"}],
        "edges": [],
        "deadlineSeconds": 1,
    }
    response = await platform.post("/v1/workflows", json=workflow, headers=bearer(lenser))
    workflow_id = (await response.json())["data"]["id"]
    body = {"inputs": {"who": "owls"}, "fundingSource": "platform_credit"}
    response = await platform.post(f"/v1/workflows/{workflow_id}/run", json=body, headers=bearer(lenser))
    run_id = (await response.json())["data"]["runId"]
    run = await finished(platform, lenser, run_id)
    assert run["status"] == "timed_out"
    events = await run_events(db, run_id)
    assert [t for t, _ in events][-2:] == ["NodeTimedOut", "RunTimedOut"]
    timed_out = events[-2][1]
    reference = {"funding": "platform_credit", "lenserId": str(lenser), "referenceId": f"{run_id}:a:1"}
    status, record = await internal(execution_proxy, "/internal/executions/cancel", reference)
    assert status == 200 and record["data"]["state"] == "cancelled"  # asked again: the same answer
    assert timed_out["credits"] == record["data"]["execution"]["creditsCharged"] == run["creditCost"] > 0
