"""schemathesis against contracts/openapi/platform-api.yaml (seed 001's paths and ours): requests
generated from the document, sent over HTTP to the real app (real PostgreSQL and RabbitMQ, a fake
Chainabit), never answer a 5xx, a status, a content type or a body the document does not give.

Deterministic (``derandomize``, no example database) and bounded (a few examples per operation)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

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
from platform_api.app import MIGRATIONS, OPENAPI, SCHEMA, create_app
from platform_api.settings import PlatformSettings

T = TypeVar("T")
LENSER = UUID("5c4e1f0a-0000-4000-8000-000000000001")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 8

schema = schemathesis.openapi.from_path(OPENAPI).exclude(
    # An event stream answers 200 and stays open until its run ends (a run no worker finishes here
    # never does): a generated request would hang until the timeout instead of being checked. The
    # SSE contract has tests of its own (tests/integration/test_run_events_sse.py).
    operation_id="streamRunEvents",
).exclude(
    # Documented ahead of the app: nothing answers them yet.
    func=lambda ctx: bool(ctx.operation.definition.raw.get("x-not-yet-served")),
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
    runner = web.AppRunner(create_app(settings_), shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return Served(f"http://{host}:{port}", database_url, amqp_url, runner, chainabit, proxy)


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


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(bearer(LENSER))
        yield session


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_document_says(case, served: Served, session: requests.Session):
    case.call_and_validate(base_url=served.url, session=session, checks=CHECKS, timeout=10)
