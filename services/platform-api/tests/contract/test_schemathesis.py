"""schemathesis against contracts/openapi/platform-api.yaml (seed 001's paths and ours): requests
generated from the document, sent over HTTP to the real app (real PostgreSQL and RabbitMQ, its run
workers executing through a fake execution-proxy, a fake Chainabit), never answer a 5xx, a status, a
content type or a body the document does not give.

Random ids name nothing, so only 404s would be checked: the lenser owns a lens, a workflow, two
finished runs and a Chainabit provisioning, and about half of the cases name those instead.

Deterministic (``derandomize``, no example database) and bounded (a few examples per operation)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import aiohttp
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lf_pg import DatabaseAccess
from lf_testing import infra
from lf_testing.fakes.chainabit import FakeChainabit
from lf_testing.fakes.execution_proxy import FakeExecutionProxy
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from platform_api.app import MIGRATIONS, OPENAPI, SCHEMA, create_app
from platform_api.settings import PlatformSettings


def frames_as_documented(ctx, response, case) -> None:
    """An event stream as its operation's ``x-sse-events`` says: ``event: gap`` first or none, then
    events of consecutive ids whose ``data`` is ``{eventType, payload, occurredAt}`` of that type,
    then ``event: done`` with ``{status, runId}`` of the run asked, and nothing after it."""
    if response.status_code != 200:
        return
    frames = [_fields(block) for block in response.text.split("\n\n") if _fields(block)]
    assert frames and frames[-1]["event"] == "done", frames[-1:]
    done = json.loads(frames[-1]["data"])
    assert set(done) == {"status", "runId"} and done["runId"] == case.path_parameters["runId"], done
    events = frames[:-1]
    if events and events[0]["event"] == "gap":
        assert set(json.loads(events[0]["data"])) == {"fromId", "toId"}, events[0]
        events = events[1:]
    ids = [int(event["id"]) for event in events]
    assert ids == sorted(set(ids)) and (not ids or ids[-1] - ids[0] == len(ids) - 1), ids
    for event in events:
        data = json.loads(event["data"])
        assert set(data) == {"eventType", "payload", "occurredAt"}, data
        assert data["eventType"] == event["event"], event


def _fields(block: str) -> dict[str, str]:
    """One SSE frame's fields (``data`` lines joined); comments (keep-alives) left out."""
    fields: dict[str, str] = {}
    for line in block.splitlines():
        if line and not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value
    return fields


def _name_what_the_lenser_owns(case, owned: dict[str, str]) -> None:
    for name in case.path_parameters or {}:
        if name in owned:
            case.path_parameters[name] = owned[name]
    # A workflow's nodes name lenses: the lenser's, so that a well-formed graph is created (201).
    if isinstance(case.body, dict) and isinstance(case.body.get("nodes"), list):
        for node in case.body["nodes"]:
            if isinstance(node, dict) and "lensId" in node:
                node["lensId"] = owned["lensId"]


T = TypeVar("T")
LENSER = UUID("5c4e1f0a-0000-4000-8000-000000000001")
"""Owns what the second test names."""
ANYONE = UUID("5c4e1f0a-0000-4000-8000-000000000002")
"""Calls the first test's operations (a rate limit of their own: they would leave LENSER none)."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# An event stream's frames are checked by frames_as_documented, not against its response schema:
# seed 001 (kept as it wrote it) describes the whole stream as one string, and schemathesis checks
# each event against that schema, which no event ({id, event, data}) can match.
STREAM_CHECKS = [*(c for c in CHECKS if c is not response_schema_conformance), frames_as_documented]
EXAMPLES_PER_OPERATION = 8
STREAM = "streamRunEvents"

served_operations = schemathesis.openapi.from_path(OPENAPI).exclude(
    # Documented ahead of the app: nothing answers them yet.
    func=lambda ctx: bool(ctx.operation.definition.raw.get("x-not-yet-served")),
)
any_ids = served_operations.exclude(
    # An event stream (text/event-stream) answers 200 and stays open until its run ends: a request
    # naming a run that never ends here would hang until the timeout instead of being checked. It
    # is exercised below on a run that has ended (it replays and closes after `done`), and the SSE
    # contract has tests of its own (tests/integration/test_run_events_sse.py).
    operation_id=STREAM,
)
owned_ids = served_operations.include(path_regex=r"\{(lensId|workflowId|runId)\}").include(
    method="POST", path="/v1/workflows"
)


class LoopThread:
    """An event loop of its own on a thread: the app serves while the synchronous test sends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="served-app", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Served:
    url: str
    database_url: str
    amqp_url: str
    runner: web.AppRunner
    chainabit: FakeChainabit
    proxy: FakeExecutionProxy
    owned: dict[str, str]
    """Path parameter -> the id of something the lenser owns."""


async def _owned(url: str) -> dict[str, str]:
    """A lens, a workflow of it, a finished run of each (``runId`` names the lens's, which nothing
    runs again: its event stream replays and ends) and a Chainabit provisioning, all LENSER's."""
    async with aiohttp.ClientSession(url, headers=bearer(LENSER)) as http:

        async def post(path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
            async with http.post(path, json=body) as response:
                answer = await response.json()
                assert response.status == status, answer
                return answer["data"]

        lens = await post(
            "/v1/lenses",
            {
                "name": "Echo",
                "template": "Say {{text}}",
                # A default, so that generated params (which know nothing of it) start runs too.
                "parameters": [{"name": "text", "type": "string", "default": "hi"}],
                "modelId": "local-small",
            },
            201,
        )
        workflow = await post(
            "/v1/workflows", {"name": "flow", "nodes": [{"id": "a", "lensId": lens["id"]}]}, 201
        )
        lens_run = await post(f"/v1/lenses/{lens['id']}/execute", {"params": {"text": "hi"}}, 202)
        workflow_run = await post(f"/v1/workflows/{workflow['id']}/run", {"inputs": {"text": "hi"}}, 202)
        await post("/v1/partners/chainabit/provision", {"email": "ada@example.com"}, 200)

        async def finished() -> bool:
            for run in (lens_run, workflow_run):
                async with http.get(f"/v1/runs/{run['runId']}") as response:
                    if (await response.json())["data"]["status"] != "succeeded":
                        return False
            return True

        await eventually(finished, timeout=30)
    return {"lensId": lens["id"], "workflowId": workflow["id"], "runId": lens_run["runId"]}


async def _serve() -> Served:
    database_url = await infra.create_database()
    amqp_url = await infra.create_vhost()
    chainabit = await FakeChainabit(api_key="test-chainabit-key-0123456789abcdef").start()
    proxy = FakeExecutionProxy()
    await proxy.__aenter__()
    settings_ = PlatformSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="platform_api",
        db_owner_role="platform_api_owner",
        platform_api_key=proxy.api_key,
        execution_proxy_url=proxy.url,
        chainabit_api_url=chainabit.url,
        chainabit_partner_api_key=chainabit.api_key,
        chainabit_timeout_seconds=2.0,
    )
    await DatabaseAccess.of(settings_, SCHEMA).migrate(MIGRATIONS)
    # access_log=None as lf_web serves (its middleware writes the access line): aiohttp's own logger
    # wrote to a stream pytest had already closed, a "Logging error" per request in the CI output.
    runner = web.AppRunner(create_app(settings_), shutdown_timeout=2, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    return Served(url, database_url, amqp_url, runner, chainabit, proxy, await _owned(url))


async def _stop(served: Served) -> None:
    await served.runner.cleanup()
    await served.proxy.__aexit__(None, None, None)
    await served.chainabit.close()
    await infra.drop_database(served.database_url)
    await infra.delete_vhost(served.amqp_url)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    thread = LoopThread()
    try:
        served = thread.run(_serve())
        try:
            yield served
        finally:
            thread.run(_stop(served))
    finally:
        thread.close()


def _session_of(lenser: UUID) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(bearer(lenser))
        yield session


@pytest.fixture(scope="module")
def anyone() -> Iterator[requests.Session]:
    yield from _session_of(ANYONE)


@pytest.fixture(scope="module")
def owner() -> Iterator[requests.Session]:
    yield from _session_of(LENSER)


HYPOTHESIS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@any_ids.parametrize()
@HYPOTHESIS
def test_the_api_answers_as_its_document_says(case, served: Served, anyone: requests.Session):
    case.call_and_validate(base_url=served.url, session=anyone, checks=CHECKS, timeout=10)


@owned_ids.parametrize()
@HYPOTHESIS
def test_the_api_answers_as_its_document_says_of_what_the_lenser_owns(
    case, served: Served, owner: requests.Session
):
    _name_what_the_lenser_owns(case, served.owned)
    checks = STREAM_CHECKS if case.operation.definition.raw["operationId"] == STREAM else CHECKS
    case.call_and_validate(base_url=served.url, session=owner, checks=checks, timeout=10)
