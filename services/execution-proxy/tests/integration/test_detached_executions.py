"""Internal streamed executions with a referenceId are detached from their connection, and cancelled
by reference (POST /internal/executions/cancel), on this replica or another one.

The provider is the fake OpenAI (paced, so that a test acts mid-stream, and counting the requests
it gets); the wallet is the real wallet-api. Served as in production: a handler is not cancelled
when its client leaves (``ServedAsInProduction``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from execution_proxy.app import SCHEMA, create_app
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.application.executions import referenced_execution_id
from execution_proxy.domain import tokens
from execution_proxy.domain.pricing import Metered
from execution_proxy.settings import ExecutionSettings
from execution_proxy.verification import VERIFIABLE
from lf_contracts.errors import EXECUTE_CANCELLED
from lf_projections.verify import verify
from lf_testing import sse
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.servers import ServedAsInProduction
from lf_testing.waiting import eventually

KEY = "sk-platform-test"
FUNDS = 100_000
REPLY = "word " * 60  # 100 one-token pieces, 30 ms apart: about 3 s
PROMPT = "Hello there"
INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI(api_key=KEY, reply=REPLY, delay_between_deltas=0.03).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def settings(
    request: pytest.FixtureRequest, settings: ExecutionSettings, openai: FakeOpenAI
) -> ExecutionSettings:
    """Indirectly parametrized with a dict, changed by it."""
    changes = {"openai_api_url": openai.url, "openai_api_key": KEY, **getattr(request, "param", {})}
    return settings.model_copy(update=changes)


@pytest.fixture
async def api(settings: ExecutionSettings, catalogue: CatalogueAdmin) -> AsyncIterator[TestClient]:
    async with TestClient(ServedAsInProduction(create_app(settings), shutdown_timeout=1)) as client:
        yield client


@pytest.fixture
async def other_replica(settings: ExecutionSettings, catalogue: CatalogueAdmin) -> AsyncIterator[TestClient]:
    """A second app on the same database: another replica."""
    async with TestClient(ServedAsInProduction(create_app(settings), shutdown_timeout=1)) as client:
        yield client


def body(lenser: UUID, reference: str, **more: Any) -> dict[str, Any]:
    return {
        "funding": "platform_credit",
        "lenserId": str(lenser),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        "referenceId": reference,
        "stream": True,
        **more,
    }


async def cancel(replica: TestClient, lenser: UUID, reference: str) -> dict[str, Any]:
    response = await replica.post(
        "/internal/executions/cancel",
        json={"funding": "platform_credit", "lenserId": str(lenser), "referenceId": reference},
        headers=INTERNAL,
    )
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


async def record(db: asyncpg.Pool, execution_id: str) -> dict[str, Any]:
    async def recorded() -> bool:
        return (
            await db.fetchval("SELECT count(*) FROM executions WHERE execution_id = $1", UUID(execution_id))
            == 1
        )

    await eventually(recorded, timeout=20)
    return dict(await db.fetchrow("SELECT * FROM executions WHERE execution_id = $1", UUID(execution_id)))


async def captured(wallet_db: asyncpg.Pool, lenser: UUID) -> int:
    async def settled() -> bool:
        statuses = await wallet_db.fetch("SELECT status FROM reservations WHERE lenser_id = $1", lenser)
        return [row["status"] for row in statuses] == ["captured"]

    await eventually(settled, timeout=20)
    return await wallet_db.fetchval("SELECT captured FROM reservations WHERE lenser_id = $1", lenser)


async def cost(catalogue: CatalogueAdmin, settings: ExecutionSettings, execution: dict[str, Any]) -> int:
    quote = (await catalogue.current()).quote("gpt-4o-mini", datetime.now(UTC), settings.credits_per_usd)
    used = Metered(input_tokens=execution["input_tokens"], output_tokens=execution["output_tokens"])
    return quote.cost(used)[1]


async def test_a_client_that_leaves_mid_stream_leaves_its_execution_running_to_the_end_then_replayed(
    api, driver, lenser, db, wallet_db, openai
):
    await driver.fund(lenser, FUNDS)
    response = await api.post("/internal/executions", json=body(lenser, "node-1"), headers=INTERNAL)
    received = []
    async for frame in sse.events(response):
        if frame.name == "start":
            execution_id = frame.data["run_id"]
        elif frame.name == "token":
            received.append(frame.data["content"])
            if len(received) == 3:
                break
    response.close()  # the worker died mid-node

    execution = await record(db, execution_id)
    assert execution["status"] == "succeeded"
    assert execution["output_tokens"] == len(openai.deltas)  # the whole answer, not what was read
    assert (execution["client_disconnected"], execution["cancelled"]) == (False, False)
    assert (openai.streams_completed, openai.disconnects) == (1, 0)
    assert await captured(wallet_db, lenser) == execution["credits_charged"]

    retried = await api.post("/internal/executions", json=body(lenser, "node-1"), headers=INTERNAL)
    frames = await sse.read_all(retried)
    assert [frame.name for frame in frames] == ["start", "token", "end"]
    assert frames[1].data == {"content": REPLY}
    end = frames[2].data
    assert (end["replayed"], end["cancelled"], end["cut_short"]) == (True, False, False)
    assert (end["execution_id"], end["credits_charged"]) == (execution_id, execution["credits_charged"])
    buffered = await api.post(
        "/internal/executions", json=body(lenser, "node-1", stream=False), headers=INTERNAL
    )
    assert ((await buffered.json())["data"]["replayed"], (await buffered.json())["data"]["cutShort"]) == (
        True,
        False,
    )
    assert len(openai.requests) == 1  # never a second provider call


async def test_a_retry_while_it_runs_here_attaches_to_it_and_gets_every_token_from_the_first(
    api, driver, lenser, wallet_db, openai
):
    await driver.fund(lenser, FUNDS)
    first = await api.post("/internal/executions", json=body(lenser, "node-2"), headers=INTERNAL)
    tokens_seen = 0
    first_frames = []
    async for frame in sse.events(first):
        first_frames.append(frame)
        tokens_seen += frame.name == "token"
        if tokens_seen == 5:
            break

    retried = await api.post("/internal/executions", json=body(lenser, "node-2"), headers=INTERNAL)
    retried_frames, rest = await asyncio.gather(sse.read_all(retried), sse.read_all(first))
    first_frames += rest

    for frames in (first_frames, retried_frames):
        assert frames[0].name == "start" and frames[-1].name == "end"
        assert "".join(frame.data["content"] for frame in frames if frame.name == "token") == REPLY
    assert retried_frames[0] == first_frames[0]
    assert retried_frames[-1] == first_frames[-1]
    assert retried_frames[-1].data["replayed"] is False
    assert len(openai.requests) == 1
    assert await captured(wallet_db, lenser) == first_frames[-1].data["credits_charged"]


@pytest.mark.parametrize("where", ["same replica", "another replica"])
async def test_a_cancel_mid_stream_stops_it_and_charges_only_what_was_produced(
    where, api, other_replica, driver, lenser, db, wallet_db, openai, catalogue, settings
):
    await driver.fund(lenser, FUNDS)
    response = await api.post("/internal/executions", json=body(lenser, "node-3"), headers=INTERNAL)
    frames = []
    async for frame in sse.events(response):
        frames.append(frame)
        if len(frames) == 4:  # start and 3 tokens
            break

    answer = await cancel(api if where == "same replica" else other_replica, lenser, "node-3")
    frames += await sse.read_all(response)

    assert answer["state"] == "cancelled"
    view = answer["execution"]
    assert view["cancelled"] is True
    streamed = "".join(frame.data["content"] for frame in frames if frame.name == "token")
    assert view["content"] == streamed and 3 <= len(streamed) < len(REPLY)
    produced = sum(frame.name == "token" for frame in frames)  # one token each (FakeProvider)
    assert view["usage"] == {"input_tokens": tokens.count_prompt([PROMPT]), "output_tokens": produced}
    end = frames[-1]
    assert end.name == "end"
    assert end.data["cancelled"] is True
    assert end.data["credits_charged"] == view["creditsCharged"]
    execution = await record(db, view["executionId"])
    assert execution["cancelled"] is True
    assert (
        view["creditsCharged"] == execution["credits_charged"] == await cost(catalogue, settings, execution)
    )
    assert await captured(wallet_db, lenser) == view["creditsCharged"]
    assert (openai.streams_completed, openai.disconnects) == (0, 1)  # the provider was stopped

    assert await cancel(other_replica, lenser, "node-3") == answer  # twice: the same answer
    findings = await verify(settings.database_url, SCHEMA, VERIFIABLE, role=settings.db_role)
    assert [str(d) for f in findings for d in f.differences] == []  # the log replays to `cancelled`


async def test_a_cancel_before_the_start_is_kept_and_the_execution_is_refused_without_a_reservation(
    api, driver, lenser, wallet_db, openai
):
    await driver.fund(lenser, FUNDS)

    answer = await cancel(api, lenser, "node-4")
    assert answer["state"] == "pending" and answer["execution"] is None
    assert await cancel(api, lenser, "node-4") == answer

    for stream in (True, False):
        refused = await api.post(
            "/internal/executions", json=body(lenser, "node-4", stream=stream), headers=INTERNAL
        )
        assert refused.status == EXECUTE_CANCELLED.status == 409
        assert (await refused.json())["error"]["code"] == EXECUTE_CANCELLED.code
    assert openai.requests == []
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations WHERE lenser_id = $1", lenser) == 0


async def test_a_start_the_wallet_refused_leaves_a_cancel_pending_not_waiting(api, lenser, openai):
    refused = await api.post("/internal/executions", json=body(lenser, "node-8"), headers=INTERNAL)
    assert refused.status == 404  # no wallet yet: wallet.not_found, after the start was claimed

    answer = await cancel(api, lenser, "node-8")

    assert (answer["state"], answer["execution"]) == ("pending", None)
    assert openai.requests == []


async def test_a_cancel_after_the_end_answers_ended_with_the_record(api, driver, lenser, wallet_db, openai):
    await driver.fund(lenser, FUNDS)
    response = await api.post("/internal/executions", json=body(lenser, "node-5"), headers=INTERNAL)
    end = (await sse.read_all(response))[-1].data

    answer = await cancel(api, lenser, "node-5")

    assert answer["state"] == "ended"
    assert answer["execution"]["cancelled"] is False
    assert answer["execution"]["content"] == REPLY
    assert answer["execution"]["creditsCharged"] == end["credits_charged"]
    assert answer["executionId"] == end["execution_id"]
    assert await cancel(api, lenser, "node-5") == answer
    assert await captured(wallet_db, lenser) == end["credits_charged"]


async def test_a_server_stopping_drains_its_detached_executions_to_their_end(api, driver, lenser, db, openai):
    await driver.fund(lenser, FUNDS)
    response = await api.post("/internal/executions", json=body(lenser, "node-6"), headers=INTERNAL)
    async for frame in sse.events(response):
        if frame.name == "start":
            execution_id = frame.data["run_id"]
            break

    await api.server.close()

    execution = await record(db, execution_id)  # recorded before the server finished closing
    assert (execution["status"], execution["output_tokens"]) == ("succeeded", len(openai.deltas))
    response.close()


@pytest.mark.parametrize("settings", [{"shutdown_timeout_seconds": 1}], indirect=True)
async def test_one_still_running_past_the_drain_is_cut_short_and_charged_for_what_it_produced(
    api, other_replica, driver, lenser, db, openai, catalogue, settings
):
    await driver.fund(lenser, FUNDS)
    response = await api.post("/internal/executions", json=body(lenser, "node-7"), headers=INTERNAL)
    async for frame in sse.events(response):
        if frame.name == "start":
            execution_id = frame.data["run_id"]
            break

    await api.server.close()  # the handler gets 1 s, the drain half of it: less than the answer's 3 s

    execution = await record(db, execution_id)
    assert execution["status"] == "succeeded"
    assert 0 < execution["output_tokens"] < len(openai.deltas)
    assert execution["credits_charged"] == await cost(catalogue, settings, execution)
    assert (execution["cut_short"], execution["cancelled"]) == (True, False)  # no cancel: the server stopped
    response.close()

    # A retry (the worker's stream broke) is told the replay is not a whole answer.
    retried = await other_replica.post("/internal/executions", json=body(lenser, "node-7"), headers=INTERNAL)
    end = (await sse.read_all(retried))[-1]
    assert (end.name, end.data["replayed"], end.data["cut_short"]) == ("end", True, True)
    assert end.data["credits_charged"] == execution["credits_charged"]
    buffered = await other_replica.post(
        "/internal/executions", json=body(lenser, "node-7", stream=False), headers=INTERNAL
    )
    assert (await buffered.json())["data"]["cutShort"] is True
    assert len(openai.requests) == 1


@pytest.mark.parametrize("settings", [{"execution_heartbeat_seconds": 0.2}], indirect=True)
async def test_a_retry_on_another_replica_while_it_runs_is_refused_running_elsewhere_then_replayed(
    api, other_replica, driver, lenser, db, openai
):
    await driver.fund(lenser, FUNDS)
    response = await api.post("/internal/executions", json=body(lenser, "node-8"), headers=INTERNAL)
    frames = []
    async for frame in sse.events(response):
        frames.append(frame)
        if len(frames) == 3:  # start and 2 tokens: it runs here
            break
    await asyncio.sleep(1.0)  # past three heartbeats: its owner's heartbeat keeps it fresh

    elsewhere = await other_replica.post(
        "/internal/executions", json=body(lenser, "node-8"), headers=INTERNAL
    )
    assert elsewhere.status == 409
    assert (await elsewhere.json())["error"]["code"] == "execute.running_elsewhere"
    assert len(openai.requests) == 1  # never a second provider call

    frames += await sse.read_all(response)
    assert frames[-1].name == "end"
    retried = await other_replica.post("/internal/executions", json=body(lenser, "node-8"), headers=INTERNAL)
    replay = await sse.read_all(retried)
    assert [frame.name for frame in replay] == ["start", "token", "end"]
    assert replay[1].data == {"content": REPLY}
    assert (replay[2].data["replayed"], replay[2].data["execution_id"]) == (
        True,
        frames[-1].data["execution_id"],
    )
    assert len(openai.requests) == 1


@pytest.mark.parametrize(("heartbeat", "runs"), [(timedelta(seconds=1), False), (timedelta(minutes=1), True)])
async def test_an_owner_whose_heartbeat_is_stale_is_taken_over_a_live_one_is_not(
    heartbeat, runs, api, driver, lenser, db, openai
):
    await driver.fund(lenser, FUNDS)
    execution_id = referenced_execution_id("platform_credit", lenser, lenser, "node-9")
    await db.execute(  # another replica started it, and said it still runs it that long ago
        "INSERT INTO execution_controls (execution_id, reference_id, started_at, owner, heartbeat_at)"
        " VALUES ($1, 'node-9', now() - interval '2 minutes', $2, now() - $3::interval)",
        execution_id,
        uuid4(),
        heartbeat,
    )

    response = await api.post("/internal/executions", json=body(lenser, "node-9"), headers=INTERNAL)

    if not runs:
        assert response.status == 409
        assert (await response.json())["error"]["code"] == "execute.running_elsewhere"
        assert openai.requests == []
        return
    frames = await sse.read_all(response)
    assert frames[-1].name == "end" and frames[-1].data["execution_id"] == str(execution_id)
    assert len(openai.requests) == 1
    assert (await record(db, str(execution_id)))["status"] == "succeeded"
