"""The per-lenser limit of /execute/wallet (100 a minute) holds across replicas, not per replica.

Two execution-proxy apps on one database stand for two running replicas: the limiter keeps its
sliding log in PostgreSQL, so together they admit exactly the limit, and refuse the rest with 429
``rate_limited`` and a ``Retry-After`` the caller can honour.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy.app import create_app
from execution_proxy.http.execute import EXECUTIONS_PER_MINUTE
from lf_contracts.errors import RATE_LIMITED
from lf_testing.tokens import bearer

PER_REPLICA = 60  # each replica alone is under the limit; together they are over it
MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
async def second_replica(settings, catalogue) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_two_replicas_together_admit_the_limit_once_and_refuse_the_rest_with_retry_after(
    driver, api, second_replica, lenser
):
    await driver.fund(lenser, 10_000)

    async def execute(replica: TestClient) -> tuple[int, str | None, str | None, object]:
        response = await replica.post(
            "/execute/wallet",
            json={"provider": "local", "model": "local-small", "max_tokens": 1, "messages": MESSAGES},
            headers=bearer(lenser),
        )
        body = await response.json()
        if response.status == 200:
            return 200, None, None, body["data"]["creditsCharged"]
        error = body["error"]
        return response.status, error["code"], response.headers.get("Retry-After"), error["details"]

    outcomes = await asyncio.gather(
        *(execute(replica) for replica in (api, second_replica) for _ in range(PER_REPLICA))
    )

    refused = 2 * PER_REPLICA - EXECUTIONS_PER_MINUTE
    assert Counter(status for status, *_ in outcomes) == {200: EXECUTIONS_PER_MINUTE, 429: refused}
    refusals = [outcome for outcome in outcomes if outcome[0] == RATE_LIMITED.status]
    for _, code, retry_after, details in refusals:
        assert code == RATE_LIMITED.code
        # Whole seconds, within the minute the oldest admission leaves the window.
        assert retry_after is not None and 1 <= int(retry_after) <= 60
        assert details == {"retryAfterSeconds": int(retry_after)}
    balance = await driver.settled(lenser)  # the admitted ones ran and were charged
    assert balance["lifetime_spent"] == sum(charged for status, *_, charged in outcomes if status == 200)
    assert balance["reserved"] == 0


async def test_each_replica_counts_the_other_replicas_admissions(driver, api, second_replica, lenser):
    await driver.fund(lenser, 1_000)

    first = await driver.execute(lenser, max_tokens=1)
    second = await second_replica.post(
        "/execute/wallet",
        json={"provider": "local", "model": "local-small", "max_tokens": 1, "messages": MESSAGES},
        headers=bearer(lenser),
    )

    assert (first.status, second.status) == (200, 200)
    assert first.headers["X-RateLimit-Limit"] == str(EXECUTIONS_PER_MINUTE)
    # The second replica counts the first replica's admission.
    assert int(second.headers["X-RateLimit-Remaining"]) == EXECUTIONS_PER_MINUTE - 2
