"""Seed 002's free demo: 5 requests an hour per client IP, shared by replicas, the client IP from the
gateway's header only when the gateway sent the request, the rate-limit headers on every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lightning_jobs.app import create_app
from lightning_jobs.settings import LightningSettings

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _app_client(settings: LightningSettings) -> TestClient:
    return TestClient(TestServer(create_app(settings, background=False)))


@pytest.fixture
async def replicas(settings: LightningSettings) -> AsyncIterator[tuple[TestClient, TestClient]]:
    """Two instances of the service on the one database: two replicas."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(_app_client(settings))
        second = await stack.enter_async_context(_app_client(settings))
        yield first, second


async def demo(client: TestClient, request: str | None = "say hi", **headers: str):
    params = {} if request is None else {"request": request}
    return await client.get("/api/demo", params=params, headers=headers)


async def test_the_demo_answers_through_the_agent_with_the_rate_limit_headers(api, proxy):
    response = await demo(api, "say hi")
    assert response.status == 200, await response.text()
    assert await response.json() == {"result": "echo: say hi"}
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    (call,) = proxy.calls
    assert call["funding"] == "service" and call["provider"] == "local"


async def test_two_replicas_share_one_allowance_and_the_sixth_request_is_429_with_the_headers(replicas):
    first, second = replicas
    remaining = []
    for number in range(5):
        response = await demo(first if number % 2 == 0 else second)
        assert response.status == 200, await response.text()
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = await demo(second)
    assert refused.status == 429
    assert "error" in await refused.json()
    assert refused.headers["X-RateLimit-Limit"] == "5"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0
    assert int(refused.headers["Retry-After"]) >= 1


async def test_through_the_gateway_each_client_ip_has_its_own_allowance(api):
    # The test client's peer is 127.0.0.1, TRUSTED_PROXIES' default: it speaks as the gateway.
    for _ in range(5):
        assert (await demo(api, **{"X-Real-IP": "203.0.113.1"})).status == 200
    assert (await demo(api, **{"X-Real-IP": "203.0.113.1"})).status == 429
    other = await demo(api, **{"X-Real-IP": "203.0.113.2"})
    assert other.status == 200
    assert other.headers["X-RateLimit-Remaining"] == "4"


async def test_a_forged_forwarded_header_from_a_peer_that_is_not_the_gateway_is_ignored(settings):
    not_behind_the_gateway = settings.model_copy(update={"trusted_proxies": "10.255.0.1"})
    async with _app_client(not_behind_the_gateway) as client:
        for number in range(5):
            forged = {"X-Forwarded-For": f"198.51.100.{number}", "X-Real-IP": f"198.51.100.{number}"}
            assert (await demo(client, **forged)).status == 200
        refused = await demo(client, **{"X-Forwarded-For": "198.51.100.99", "X-Real-IP": "198.51.100.99"})
    assert refused.status == 429  # all six were the peer's, whatever they said


async def test_a_missing_request_is_400_and_still_carries_the_headers(api, proxy):
    response = await demo(api, None)
    assert response.status == 400
    assert "request" in (await response.json())["error"]
    for header in RATE_HEADERS:
        assert header in response.headers
    assert response.headers["X-RateLimit-Remaining"] == "4"  # it took from the allowance
    assert proxy.calls == []


async def test_the_agent_failing_is_500_with_the_headers(api, proxy):
    proxy.fail_next = [422]
    response = await demo(api)
    assert response.status == 500
    assert "error" in await response.json()
    for header in RATE_HEADERS:
        assert header in response.headers
