"""Runs end to end: the real app (routes, relay, run workers) on real PostgreSQL and RabbitMQ,
executing through a fake execution-proxy that speaks its real ``/internal/executions`` format."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing.fakes.execution_proxy import FakeExecutionProxy
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from platform_api.app import create_app
from platform_api.domain.run import NodeWork
from platform_api.http.keys import RUNS
from platform_api.settings import PlatformSettings


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


TERMINAL = ("succeeded", "failed", "canceled", "timed_out")


@pytest.fixture
async def proxy() -> AsyncIterator[FakeExecutionProxy]:
    async with FakeExecutionProxy(api_key="test-platform-key") as fake:
        yield fake


@pytest.fixture
async def runs_api(settings: PlatformSettings, proxy: FakeExecutionProxy) -> AsyncIterator[TestClient]:
    configured = settings.model_copy(update={"execution_proxy_url": proxy.url, "node_delta_interval_ms": 100})
    async with TestClient(TestServer(create_app(configured))) as client:
        yield client


class Runs:
    def __init__(self, api: TestClient) -> None:
        self.api = api

    async def post(self, path: str, body: Any, lenser: UUID, status: int | None = None) -> dict[str, Any]:
        response = await self.api.post(path, json=body, headers=bearer(lenser))
        answer = await response.json()
        if status is not None:
            assert response.status == status, answer
        return answer

    async def lens(self, lenser: UUID, **changes: Any) -> str:
        return (await self.post("/v1/lenses", a_lens(**changes), lenser, 201))["data"]["id"]

    async def metric(self, sample: str) -> float:
        text = await (await self.api.get("/metrics")).text()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample + " ")
        )

    async def status(self, run_id: str, lenser: UUID) -> tuple[int, dict[str, Any]]:
        response = await self.api.get(f"/v1/runs/{run_id}", headers=bearer(lenser))
        return response.status, await response.json()

    async def finished(self, run_id: str, lenser: UUID, timeout: float = 20.0) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def ended() -> bool:
            _, answer = await self.status(run_id, lenser)
            found.update(answer["data"])
            return answer["data"]["status"] in TERMINAL

        await eventually(ended, timeout=timeout)
        return found

    async def workflow(
        self, lenser: UUID, nodes: list[str], edges: list[dict[str, Any]], **extra: Any
    ) -> str:
        lens_id = await self.lens(
            lenser,
            template="Say {{text}}",
            parameters=[{"name": "text", "type": "string", "required": True}],
        )
        body = {
            "name": "flow",
            "nodes": [{"id": n, "lensId": lens_id, "label": n} for n in nodes],
            "edges": edges,
            **extra,
        }
        return (await self.post("/v1/workflows", body, lenser, 201))["data"]["id"]


@pytest.fixture
def runs(runs_api: TestClient) -> Runs:
    return Runs(runs_api)


async def event_types(db: asyncpg.Pool, run_id: str) -> list[str]:
    rows = await db.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"run-{run_id}")
    return [r["type"] for r in rows]


async def test_a_lens_run_succeeds_with_its_artifact_tokens_and_credit_cost(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    lens_id = await runs.lens(lenser)
    succeeded_before = await runs.metric('platform_runs_ended_total{status="succeeded"}')
    accepted = await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "owls"}}, lenser, 202)
    run_id = accepted["data"]["runId"]
    assert accepted["data"]["status"] == "queued"
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded", run
    assert run["creditCost"] == 3 and run["billingStatus"] == "charged"
    assert run["tokenInput"] == 10 and run["tokenOutput"] > 0
    assert run["modelId"] == "local-small" and run["providerKey"] == "local"
    assert run["startedAt"] and run["completedAt"] and run["latencyMs"] is not None
    [artifact] = run["artifacts"]
    assert artifact["artifactKind"] == "text" and artifact["isPrimaryOutput"] is True
    assert artifact["contentText"] == "echo: Summarise owls in 50 words"
    assert artifact["visibility"] == "private"
    [call] = proxy.calls
    assert call["referenceId"] == f"{run_id}:lens:1"
    assert call["funding"] == "platform_credit" and call["lenserId"] == str(lenser)
    assert await runs.metric('platform_runs_ended_total{status="succeeded"}') == succeeded_before + 1
    assert await event_types(db, run_id) == [
        "RunQueued",
        "NodeQueued",
        "RunStarted",
        "NodeStarted",
        "NodeStreamDelta",  # the whole text: faster than NODE_DELTA_INTERVAL_MS
        "NodeCompleted",
        "RunCompleted",
    ]


async def test_missing_required_params_are_400_naming_them(runs: Runs, lenser: UUID):
    lens_id = await runs.lens(lenser)
    answer = await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {}}, lenser, 400)
    assert answer["error"]["code"] == "validation_error"
    assert [f["field"] for f in answer["error"]["details"]["fields"]] == ["params.topic"]


async def test_byok_cloud_funding_without_a_key_ref_is_400(runs: Runs, lenser: UUID):
    lens_id = await runs.lens(lenser)
    body = {"params": {"topic": "x"}, "fundingSource": "user_byok_cloud"}
    answer = await runs.post(f"/v1/lenses/{lens_id}/execute", body, lenser, 400)
    assert answer["error"]["details"]["fields"][0]["field"] == "byokKeyRefId"


async def test_an_idempotency_key_gives_the_same_run_and_another_body_is_409(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID
):
    lens_id = await runs.lens(lenser)
    body = {"params": {"topic": "owls"}, "idempotencyKey": "k-1"}
    first = await runs.post(f"/v1/lenses/{lens_id}/execute", body, lenser, 202)
    again = await runs.post(f"/v1/lenses/{lens_id}/execute", body, lenser, 202)
    assert again["data"]["runId"] == first["data"]["runId"]
    other = await runs.post(
        f"/v1/lenses/{lens_id}/execute", {**body, "params": {"topic": "cats"}}, lenser, 409
    )
    assert other["error"]["code"] == "run.idempotency_conflict"
    await runs.finished(first["data"]["runId"], lenser)
    assert len(proxy.calls) == 1


async def test_another_lensers_run_is_404(runs: Runs, lenser: UUID, other_lenser: UUID):
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    status, answer = await runs.status(run_id, other_lenser)
    assert status == 404 and answer["error"]["code"] == "run.not_found"
    refused = await runs.post(f"/v1/runs/{run_id}/cancel", {}, other_lenser, 404)
    assert refused["error"]["code"] == "run.not_found"
    status, _ = await runs.status(str(uuid4()), lenser)
    assert status == 404


async def test_a_diamond_runs_both_branches_in_parallel_and_merges_at_the_join(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID
):
    proxy.delay = 0.4
    edges = [
        {"source": "a", "target": "b", "targetParam": "text"},
        {"source": "a", "target": "c", "targetParam": "text"},
        {"source": "b", "target": "d", "targetParam": "text", "mergeStrategy": "concat"},
        {"source": "c", "target": "d", "targetParam": "text", "mergeStrategy": "concat"},
    ]
    workflow_id = await runs.workflow(lenser, ["a", "b", "c", "d"], edges)
    accepted = await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": "go"}}, lenser, 202)
    assert accepted["data"]["workflowId"] == workflow_id
    run = await runs.finished(accepted["data"]["runId"], lenser)
    assert run["status"] == "succeeded", run
    assert run["creditCost"] == 12
    assert proxy.most_in_flight >= 2  # b and c at once
    primary = [a for a in run["artifacts"] if a["isPrimaryOutput"]]
    assert len(run["artifacts"]) == 4 and len(primary) == 1
    assert primary[0]["contentText"] == "echo: Say echo: Say echo: Say go\n\necho: Say echo: Say go"


async def test_a_failed_node_skips_its_dependants_and_the_run_fails(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.fail_if = lambda prompt: 400 if "boom" in prompt else None
    edges = [
        {"source": "a", "target": "b", "targetParam": "text"},
        {"source": "b", "target": "c", "targetParam": "text"},
    ]
    workflow_id = await runs.workflow(lenser, ["a", "b", "c", "x"], edges)
    accepted = await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": "boom"}}, lenser, 202)
    run_id = accepted["data"]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "failed" and run["errorCode"] == "node_failed"
    types = await event_types(db, run_id)
    assert types.count("NodeSkipped") == 2 and types.count("NodeFailed") == 2  # a and x both say boom
    assert types[-1] == "RunFailed"


async def test_a_transient_provider_error_is_retried_as_a_new_attempt(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.fail_next = [502]
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded" and run["creditCost"] == 3
    assert "NodeRetried" in await event_types(db, run_id)
    assert [c["referenceId"] for c in proxy.calls] == [f"{run_id}:lens:1", f"{run_id}:lens:2"]


async def test_a_run_spending_past_its_budget_is_cancelled_budget_exceeded(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID
):
    edges = [{"source": "a", "target": "b", "targetParam": "text"}]
    workflow_id = await runs.workflow(lenser, ["a", "b"], edges, budgetCredits=2)
    run_id = (await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "canceled" and run["errorCode"] == "budget_exceeded"
    assert run["creditCost"] == 3 and len(proxy.calls) == 1


async def test_cancel_mid_node_cancels_its_execution_and_charges_what_it_used(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.delay, proxy.credits = 3.0, 10
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]

    async def streaming() -> bool:
        return "NodeStreamDelta" in await event_types(db, run_id)

    await eventually(streaming)
    answer = await runs.post(f"/v1/runs/{run_id}/cancel", {}, lenser, 200)
    assert answer["data"]["status"] == "running" and answer["data"]["cancelRequested"] is True
    run = await runs.finished(run_id, lenser)
    reference = f"{run_id}:lens:1"
    assert run["status"] == "canceled" and run["errorCode"] == "cancelled_by_user"
    assert proxy.cancels == [reference] and proxy.charges == {reference: 1}
    charged = proxy.recorded[reference]["creditsCharged"]
    assert 0 < charged < 10 and run["creditCost"] == charged and run["billingStatus"] == "charged"
    assert run["artifacts"] == []
    assert (await event_types(db, run_id))[-2:] == ["NodeCancelled", "RunCancelled"]
    again = await runs.post(f"/v1/runs/{run_id}/cancel", {}, lenser, 200)
    assert again["data"]["status"] == "canceled"


async def test_the_callers_runs_are_listed_newest_first_with_a_total(
    runs: Runs, lenser: UUID, other_lenser: UUID
):
    lens_id = await runs.lens(lenser)
    ids = [
        (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": str(n)}}, lenser, 202))[
            "data"
        ]["runId"]
        for n in range(3)
    ]
    response = await runs.api.get("/v1/runs", params={"limit": 2}, headers=bearer(lenser))
    answer = await response.json()
    assert [r["id"] for r in answer["data"]] == ids[::-1][:2]
    assert answer["meta"]["total"] == 3 and answer["meta"]["hasNextPage"] is True
    response = await runs.api.get("/v1/runs", headers=bearer(other_lenser))
    assert (await response.json())["meta"]["total"] == 0


async def test_a_fan_out_of_8_runs_all_8_nodes_at_once(runs: Runs, proxy: FakeExecutionProxy, lenser: UUID):
    proxy.delay = 0.5
    leaves = [f"n{i}" for i in range(8)]
    edges = [{"source": "root", "target": leaf, "targetParam": "text"} for leaf in leaves]
    workflow_id = await runs.workflow(lenser, ["root", *leaves], edges)
    run_id = (await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded" and run["creditCost"] == 27
    assert proxy.most_in_flight == 8
    assert len([a for a in run["artifacts"] if a["isPrimaryOutput"]]) == 8


async def test_a_run_past_its_deadline_ends_timed_out(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.delay = 5.0
    workflow_id = await runs.workflow(
        lenser, ["a", "b"], [{"source": "a", "target": "b", "targetParam": "text"}], deadlineSeconds=1
    )
    run_id = (await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "timed_out" and run["errorCode"] == "timed_out"
    assert (await event_types(db, run_id))[-2:] == ["NodeTimedOut", "RunTimedOut"]


async def test_run_status_is_what_a_replay_of_the_runs_events_makes(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, settings: PlatformSettings
):
    """``python -m platform_api verify``: the inline read models against a rebuild from the log,
    after runs that went through every kind of settlement."""
    proxy.fail_if = lambda prompt: 400 if "boom" in prompt else None
    edges = [{"source": "a", "target": "b", "targetParam": "text"}]
    workflow_id = await runs.workflow(lenser, ["a", "b"], edges)
    for text in ("fine", "boom"):
        run_id = (
            await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": text}}, lenser, 202)
        )["data"]["runId"]
        await runs.finished(run_id, lenser)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DB_ROLE": settings.db_role,
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "platform_api", "verify", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()


async def test_byok_funding_and_overrides_reach_execution_proxy_and_bill_as_byok(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID
):
    proxy.credits = 0  # the lenser's own key pays
    lens_id = await runs.lens(lenser)
    key_ref = str(uuid4())
    body = {
        "params": {"topic": "x"},
        "fundingSource": "user_byok_cloud",
        "byokKeyRefId": key_ref,
        "modelOverride": "claude-sonnet-4-6",
        "providerOverride": "anthropic",
    }
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", body, lenser, 202))["data"]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded" and run["billingStatus"] == "byok" and run["creditCost"] == 0
    [call] = proxy.calls
    assert (call["funding"], call["keyRefId"], call["lenserId"]) == ("user_byok_cloud", key_ref, str(lenser))
    assert (call["model"], call["provider"]) == ("claude-sonnet-4-6", "anthropic")


@pytest.mark.parametrize(
    ("path", "limit"), [("/v1/lenses/{id}/execute", 100), ("/v1/workflows/{id}/run", 60)]
)
async def test_run_requests_are_rate_limited_per_lenser(
    runs: Runs, lenser: UUID, other_lenser: UUID, path: str, limit: int
):
    url = path.format(id=uuid4())  # no such lens or workflow: each request still counts
    body = {"params": {}} if "execute" in path else {"inputs": {}}
    for _ in range(limit):
        await runs.post(url, body, lenser, 404)
    refused = await runs.post(url, body, lenser, 429)
    assert refused["error"]["code"] == "rate_limited"
    await runs.post(url, body, other_lenser, 404)  # another lenser's allowance is their own


async def test_a_workflow_with_a_sub_workflow_runs_its_nodes_in_place(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID
):
    lens_id = await runs.lens(
        lenser, template="Say {{text}}", parameters=[{"name": "text", "type": "string", "required": True}]
    )
    inner = {
        "name": "inner",
        "nodes": [{"id": "p", "lensId": lens_id}, {"id": "q", "lensId": lens_id}],
        "edges": [{"source": "p", "target": "q", "targetParam": "text"}],
    }
    inner_id = (await runs.post("/v1/workflows", inner, lenser, 201))["data"]["id"]
    outer = {
        "name": "outer",
        "nodes": [
            {"id": "x", "lensId": lens_id},
            {"id": "s", "workflowId": inner_id},
            {"id": "y", "lensId": lens_id},
        ],
        "edges": [
            {"source": "x", "target": "s", "targetParam": "text"},
            {"source": "s", "target": "y", "targetParam": "text"},
        ],
    }
    outer_id = (await runs.post("/v1/workflows", outer, lenser, 201))["data"]["id"]
    run_id = (await runs.post(f"/v1/workflows/{outer_id}/run", {"inputs": {"text": "go"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded", run
    assert sorted(a["nodeId"] for a in run["artifacts"]) == ["s/p", "s/q", "x", "y"]
    [primary] = [a for a in run["artifacts"] if a["isPrimaryOutput"]]
    assert primary["nodeId"] == "y" and primary["contentText"] == "echo: Say " * 4 + "go"
    assert proxy.prompts() == ["Say " + "echo: Say " * n + "go" for n in range(4)]


async def test_execution_proxy_unavailable_delays_the_node_without_failing_or_retrying_it(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.fail_next = [503, 503]
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded"
    assert [c["referenceId"] for c in proxy.calls] == [f"{run_id}:lens:1"] * 3
    assert "NodeRetried" not in await event_types(db, run_id)


async def sse_events(api: TestClient, run_id: str, lenser: UUID) -> list[tuple[str, dict[str, Any]]]:
    """The run's event stream read to its ``done``: (wire type, payload) of each frame."""
    response = await api.get(f"/v1/runs/{run_id}/events", headers=bearer(lenser))
    assert response.status == 200
    seen, name = [], "message"
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data = json.loads(line.partition(":")[2])
            seen.append((name, data.get("payload", data)))
            if name == "done":
                break
    return seen


async def test_a_streamed_node_shows_its_text_as_deltas_over_sse_that_make_its_output(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID
):
    proxy.delay = 1.5
    proxy.reply = lambda prompt: " ".join(f"word{i}" for i in range(30))
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    seen = await sse_events(runs.api, run_id, lenser)
    deltas = [payload for name, payload in seen if name == "node.stream.delta"]
    [completed] = [payload for name, payload in seen if name == "node.completed"]
    assert len(deltas) >= 3  # coalesced (100 ms here), not one per token, nor one in all
    assert len(deltas) < 30
    assert all(d["nodeId"] == "lens" and d["attempt"] == 1 for d in deltas)
    assert "".join(d["delta"] for d in deltas) == completed["output"] == proxy.reply("")
    assert seen[-1] == ("done", {"status": "succeeded", "runId": run_id})
    run = await runs.finished(run_id, lenser)
    [artifact] = run["artifacts"]  # the output, not the deltas
    assert artifact["contentText"] == completed["output"]


async def test_a_delta_of_a_cancelled_run_is_refused_and_not_recorded(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.delay = 3.0
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]

    async def started() -> bool:
        return "NodeStarted" in await event_types(db, run_id)

    await eventually(started)
    await runs.post(f"/v1/runs/{run_id}/cancel", {}, lenser, 200)
    await runs.finished(run_id, lenser)
    before = await event_types(db, run_id)
    work = NodeWork(UUID(run_id), "lens", 1, lenser, "platform_credit", None, "local-small", None, "p", None)
    assert await runs.api.server.app[RUNS].stream_delta(work, "late text", metadata={}) is False
    assert await event_types(db, run_id) == before


async def test_a_budget_spent_cancels_a_running_sibling_which_is_charged_what_it_used(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.credits = 10
    proxy.reply = lambda prompt: " ".join(["w"] * 20)
    proxy.delay_of = lambda prompt: 5.0 if "slow" in prompt else 1.0
    lens_id = await runs.lens(
        lenser, template="Say {{text}}", parameters=[{"name": "text", "type": "string", "required": True}]
    )
    nodes = [
        {"id": name, "lensId": lens_id, "label": name, "config": {"paramOverrides": {"text": name}}}
        for name in ("fast", "slow")
    ]
    body = {"name": "siblings", "nodes": nodes, "edges": [], "budgetCredits": 5}
    workflow_id = (await runs.post("/v1/workflows", body, lenser, 201))["data"]["id"]
    run_id = (await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {}}, lenser, 202))["data"][
        "runId"
    ]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "canceled" and run["errorCode"] == "budget_exceeded"
    rows = await db.fetch(
        "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version", f"run-{run_id}"
    )
    types = [r["type"] for r in rows]
    assert "RunCancelRequested" in types and types[-1] == "RunCancelled"
    [cancelled] = [r["data"] for r in rows if r["type"] == "NodeCancelled"]
    assert cancelled["node_id"] == "slow"
    reference = f"{run_id}:slow:1"
    assert proxy.cancels == [reference]
    partial = proxy.recorded[reference]["creditsCharged"]
    assert cancelled["credits"] == partial and partial < 10
    assert run["creditCost"] == 10 + partial


async def test_a_deadline_cuts_a_streaming_node_which_is_charged_what_it_used(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.credits = 10
    proxy.delay = 6.0
    proxy.reply = lambda prompt: " ".join(["w"] * 20)
    workflow_id = await runs.workflow(
        lenser, ["a", "b"], [{"source": "a", "target": "b", "targetParam": "text"}], deadlineSeconds=2
    )
    run_id = (await runs.post(f"/v1/workflows/{workflow_id}/run", {"inputs": {"text": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "timed_out"
    rows = await db.fetch(
        "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version", f"run-{run_id}"
    )
    assert [r["type"] for r in rows][-2:] == ["NodeTimedOut", "RunTimedOut"]
    timed_out = rows[-2]["data"]
    reference = f"{run_id}:a:1"
    assert proxy.cancels == [reference] and proxy.charges == {reference: 1}
    assert timed_out["credits"] == proxy.recorded[reference]["creditsCharged"] < 10
    assert run["creditCost"] == timed_out["credits"]


async def test_a_replay_of_an_execution_cut_short_retries_the_node_as_a_new_attempt_with_its_charge(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    # The proxy stops mid-node (a shutdown past its drain): the execution is recorded cut short and
    # the worker's stream breaks; its retry of the same attempt gets the record's replay.
    proxy.credits = 10
    proxy.reply = lambda prompt: " ".join(["w"] * 10)
    proxy.cut_next = [4]
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)

    first, second = f"{run_id}:lens:1", f"{run_id}:lens:2"
    assert [c["referenceId"] for c in proxy.calls] == [first, first, second]  # the replay, then anew
    cut = proxy.recorded[first]
    assert cut["cutShort"] is True and cut["creditsCharged"] == 4
    rows = await db.fetch(
        "SELECT type, data FROM events WHERE stream_id = $1 AND type = 'NodeRetried'", f"run-{run_id}"
    )
    assert [(r["data"]["error_code"], r["data"]["credits"]) for r in rows] == [("execution_cut_short", 4)]
    assert run["status"] == "succeeded" and run["creditCost"] == 4 + 10
    [artifact] = run["artifacts"]
    assert artifact["contentText"] == " ".join(["w"] * 10)  # the whole answer, never the cut one


async def test_a_node_running_on_another_proxy_replica_is_asked_again_with_the_same_attempt(
    runs: Runs, proxy: FakeExecutionProxy, lenser: UUID, db: asyncpg.Pool
):
    proxy.elsewhere_next = 2  # 409 execute.running_elsewhere twice, then it runs (or is replayed)
    lens_id = await runs.lens(lenser)
    run_id = (await runs.post(f"/v1/lenses/{lens_id}/execute", {"params": {"topic": "x"}}, lenser, 202))[
        "data"
    ]["runId"]
    run = await runs.finished(run_id, lenser)
    assert run["status"] == "succeeded"
    assert [c["referenceId"] for c in proxy.calls] == [f"{run_id}:lens:1"] * 3  # never a new attempt
    assert "NodeRetried" not in await event_types(db, run_id)
