"""One request id end to end: the one the gateway settles on (the caller's when it is sane, else
its own, 32 hex digits) is the one the service logs and answers with, and the gateway logs.

wallet-api runs as a real process behind infra/gateway's nginx; both logs are read back as the JSON
lines they write.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from lf_testing.processes import Gateway, ServiceProcess, json_lines, nginx_binary
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx (the gateway) is not installed"),
]
GENERATED = re.compile(r"[0-9a-f]{32}")
LENSER = "0b6c1f3e-5d2a-4f6b-9c8d-7e6f5a4b3c2d"


@pytest.fixture
async def system(database_url, amqp_url, tmp_path):
    log = tmp_path / "wallet-api.log"
    wallet = ServiceProcess(
        "wallet_api",
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "DB_ROLE": "wallet_api",
            "PLATFORM_API_KEY": "e2e-platform-key",
            "LOG_LEVEL": "INFO",  # the access line of each request
        },
        log_to=log,
    )
    gateway = Gateway({"WALLET_API_UPSTREAM": f"127.0.0.1:{wallet.port}"})
    try:
        await wallet.start()
        await gateway.start()
        async with aiohttp.ClientSession(base_url=gateway.url) as http:
            yield http, gateway, log
    finally:
        gateway.stop()
        wallet.stop()


async def _logged_by_both(gateway: Gateway, service_log: Path, request_id: str) -> None:
    def access_lines(lines: list[dict]) -> list[dict]:
        return [
            line
            for line in lines
            if line.get("event") == "http.request" and line.get("path") == "/wallet/balance"
        ]

    async def logged() -> bool:
        return bool(access_lines(json_lines(service_log))) and bool(access_lines(gateway.access_log()))

    await eventually(logged, timeout=10)
    assert [line["request_id"] for line in access_lines(json_lines(service_log))] == [request_id]
    assert [line["request_id"] for line in access_lines(gateway.access_log())] == [request_id]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        pytest.param({}, False, id="none-sent"),
        pytest.param({"X-Request-Id": "client-trace:42.a_b"}, True, id="sane-kept"),
        pytest.param({"X-Request-Id": 'quote"and space ' + "x" * 200}, False, id="unsafe-replaced"),
    ],
)
async def test_a_request_has_one_id_in_the_answer_and_in_every_log_line(system, sent, kept) -> None:
    http, gateway, service_log = system

    async with http.get("/wallet/balance", headers={**bearer(LENSER), **sent}) as response:
        body = await response.json()
        answered = response.headers.getall("X-Request-Id")

    assert body["meta"]["requestId"] == answered[0] and len(answered) == 1
    request_id = answered[0]
    if kept:
        assert request_id == sent["X-Request-Id"]
    else:
        assert GENERATED.fullmatch(request_id), request_id
    await _logged_by_both(gateway, service_log, request_id)
