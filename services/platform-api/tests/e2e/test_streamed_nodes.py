"""Streamed nodes and stopping them mid-node, with the real execution-proxy (its built-in ``local``
provider streaming at ``LOCAL_TOKEN_DELAY_MS`` a piece: a slow streaming provider) and the real
wallet-api: the run worker's requests (``stream: true``, ``POST /internal/executions/cancel``) and
the proxy's answers are each other's real wire format.

``platform_credit`` runs are charged on the lenser's wallet, ``local-small`` priced here at 1 credit
per output token (nothing per input token) so that a partial charge is visible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing import services
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from platform_api.app import create_app
from platform_api.settings import PlatformSettings

LOCAL_TOKEN_DELAY_MS = 60
"""The ``local`` reply runs 24 to 63 pieces: 1.4 to 3.8 s a node."""
LENS = {
    "name": "hello",
    "template": "Say hello to {{who}}",
    "parameters": [{"name": "who", "type": "string", "required": True}],
    "modelId": "local-small",
}


@pytest.fixture
async def execution_proxy(settings: PlatformSettings, wallet: TestServer) -> AsyncIterator[TestServer]:
    async with services.execution_proxy(
        settings.database_url,
        settings.amqp_url,
        platform_api_key=settings.platform_api_key or "",
        wallet_api_url=services.url_of(wallet),
        local_token_delay_ms=LOCAL_TOKEN_DELAY_MS,
    ) as server:
        yield server


@pytest.fixture
async def api(settings: PlatformSettings, execution_proxy: TestServer) -> AsyncIterator[TestClient]:
    configured = settings.model_copy(
        update={"execution_proxy_url": services.url_of(execution_proxy), "node_delta_interval_ms": 200}
    )
    async with TestClient(TestServer(create_app(configured))) as client:
        yield client


async def internal(
    server: TestServer, path: str, body: dict[str, Any], api_key: str
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.make_url(path), json=body, headers={"X-Platform-Api-Key": api_key}) as response,
    ):
        return response.status, await response.json()


@pytest.fixture
async def funded(
    lenser_wallet: Any, execution_proxy: TestServer, settings: PlatformSettings, lenser: UUID
) -> UUID:
    """``lenser`` with credits, and ``local-small`` at 1 credit per output token."""
    await lenser_wallet.fund(lenser, 1_000_000)
    price = {"modelKey": "local-small", "inputPer1k": "0", "outputPer1k": "10"}
    status, answer = await internal(
        execution_proxy, "/internal/catalogue/prices", price, settings.platform_api_key or ""
    )
    assert status == 201, answer
    await asyncio.sleep(1.2)  # the proxy's catalogue cache (1 s)
    return lenser


async def run_lens(api: TestClient, lenser: UUID, lens_id: str, funding: str) -> str:
    body = {"params": {"who": "owls"}, "fundingSource": funding}
    response = await api.post(f"/v1/lenses/{lens_id}/execute", json=body, headers=bearer(lenser))
    assert response.status == 202, await response.text()
    return (await response.json())["data"]["runId"]


async def finished(api: TestClient, lenser: UUID, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = {}

    async def ended() -> bool:
        answer = await (await api.get(f"/v1/runs/{run_id}", headers=bearer(lenser))).json()
        run.update(answer["data"])
        return run["status"] not in ("queued", "running")

    await eventually(ended, timeout=60)
    return run


async def stored(db: asyncpg.Pool, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await db.fetch(
        "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version", f"run-{run_id}"
    )
    return [(r["type"], r["data"]) for r in rows]


async def the_proxys_record(
    execution_proxy: TestServer, settings: PlatformSettings, lenser: UUID, reference: str
) -> dict[str, Any]:
    """What the proxy recorded for the reference (a cancel asked again answers it)."""
    name = {"funding": "platform_credit", "lenserId": str(lenser), "referenceId": reference}
    status, answer = await internal(
        execution_proxy, "/internal/executions/cancel", name, settings.platform_api_key or ""
    )
    assert status == 200 and answer["data"]["state"] == "cancelled", answer
    return answer["data"]["execution"]


async def test_a_streamed_node_shows_its_text_over_sse_as_deltas_that_make_its_output(
    platform, api: TestClient, run_events, lenser: UUID
):
    lens = await platform.lens(lenser, **LENS)
    run_id = await run_lens(api, lenser, lens["id"], "user_byok_local")
    await finished(api, lenser, run_id)
    seen = await run_events(run_id, lenser)
    deltas = [payload["delta"] for kind, payload in seen if kind == "node.stream.delta"]
    [completed] = [payload for kind, payload in seen if kind == "node.completed"]
    assert len(deltas) >= 3 and "".join(deltas) == completed["output"]
    assert seen[-1][0] == "run.completed"


async def test_cancel_mid_node_charges_what_the_proxy_recorded_for_the_reference_less_than_a_full_run(
    platform,
    api: TestClient,
    funded: UUID,
    execution_proxy: TestServer,
    settings: PlatformSettings,
    db: asyncpg.Pool,
):
    lenser = funded
    lens = await platform.lens(lenser, **LENS)
    run_id = await run_lens(api, lenser, lens["id"], "platform_credit")

    async def streaming() -> bool:
        return any(kind == "NodeStreamDelta" for kind, _ in await stored(db, run_id))

    await eventually(streaming, timeout=30)
    response = await api.post(f"/v1/runs/{run_id}/cancel", headers=bearer(lenser))
    answer = (await response.json())["data"]
    assert answer["status"] == "running" and answer["cancelRequested"] is True
    run = await finished(api, lenser, run_id)
    assert run["status"] == "canceled" and run["errorCode"] == "cancelled_by_user"
    [cancelled] = [data for kind, data in await stored(db, run_id) if kind == "NodeCancelled"]
    record = await the_proxys_record(execution_proxy, settings, lenser, f"{run_id}:lens:1")
    charged = record["creditsCharged"]
    assert cancelled["credits"] == charged == run["creditCost"] and run["billingStatus"] == "charged"
    full = await finished(api, lenser, await run_lens(api, lenser, lens["id"], "platform_credit"))
    assert full["status"] == "succeeded" and 0 < charged < full["creditCost"]


async def test_a_deadline_cuts_a_streaming_node_which_is_charged_what_it_used(
    platform,
    api: TestClient,
    funded: UUID,
    execution_proxy: TestServer,
    settings: PlatformSettings,
    db: asyncpg.Pool,
):
    lenser = funded
    lens = await platform.lens(lenser, **LENS)
    workflow = await platform.workflow(
        lenser,
        {
            "name": "slow",
            "nodes": [{"id": "a", "lensId": lens["id"], "label": "a"}],
            "edges": [],
            "deadlineSeconds": 1,
        },
    )
    body = {"inputs": {"who": "owls"}, "fundingSource": "platform_credit"}
    response = await api.post(f"/v1/workflows/{workflow['id']}/run", json=body, headers=bearer(lenser))
    run_id = (await response.json())["data"]["runId"]
    run = await finished(api, lenser, run_id)
    assert run["status"] == "timed_out"
    events = await stored(db, run_id)
    assert [kind for kind, _ in events][-2:] == ["NodeTimedOut", "RunTimedOut"]
    record = await the_proxys_record(execution_proxy, settings, lenser, f"{run_id}:a:1")
    assert events[-2][1]["credits"] == record["creditsCharged"] == run["creditCost"] > 0
