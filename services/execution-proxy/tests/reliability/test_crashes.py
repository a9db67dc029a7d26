"""Crashes of execution-proxy never cost a lenser money, nor charge them twice.

execution-proxy runs as a real process (``python -m execution_proxy serve``) and is SIGKILLed, as a
crash or an OOM kill would end it; wallet-api runs beside it (the ``wallet`` fixture: in this test
process, with its consumer and expiry loop), on the same database and vhost.

- Killed mid-request (reserved, the provider still answering): nothing is recorded, so nothing is
  relayed; the reservation outlives no one's interest, expires after its TTL and is released whole.
- Killed mid-settlement (the outcome recorded, not yet relayed): the next process's relay publishes
  it and the wallet captures it once; published twice (a crash between publishing and moving the
  relay's checkpoint), the wallet's inbox takes the second for what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.processes import ServiceProcess, free_port
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually

pytestmark = pytest.mark.slow
API_KEY = "test-platform-key"  # the wallet fixture's
TTL_SECONDS = 2
HELLO = [{"role": "user", "content": "Hello there"}]
SETTLED = "execution.execution_settled.v1"

StartProxy = Callable[..., Awaitable[ServiceProcess]]


@pytest.fixture
def api() -> None:
    """No execution-proxy in this process: its relay would publish what the processes under test
    recorded, and settle for them what they are meant to settle themselves (``driver`` only funds
    and reads the wallet here)."""
    return None


@pytest.fixture
async def start_proxy(database_url, amqp_url, settings, wallet) -> AsyncIterator[StartProxy]:
    """``await start_proxy(**env)``: execution-proxy as a process, with the e2e tests' environment
    (the ``settings`` fixture has migrated its schema). Every one started is stopped afterwards."""
    started: list[ServiceProcess] = []

    async def start(**env: str) -> ServiceProcess:
        process = ServiceProcess(
            "execution_proxy",
            {
                "DATABASE_URL": database_url,
                "AMQP_URL": amqp_url,
                "DB_ROLE": "execution_proxy",
                "PLATFORM_API_KEY": API_KEY,
                "WALLET_API_URL": str(wallet.make_url("")).rstrip("/"),
                "SEED_CATALOGUE": "true",
                **env,
            },
        )
        started.append(process)
        return await process.start()

    yield start
    for process in started:
        process.stop()


def unreachable(amqp_url: str) -> str:
    """The same broker URL, at a port where nothing listens: RabbitMQ as seen from a cut network."""
    parts = urlsplit(amqp_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{free_port()}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def reservations_of(wallet_db: asyncpg.Pool, lenser: UUID) -> list[dict[str, Any]]:
    rows = await wallet_db.fetch("SELECT * FROM reservations WHERE lenser_id = $1", lenser)
    return [dict(row) for row in rows]


# --- killed mid-request ------------------------------------------------------------------------


async def first_token_of_a_slow_stream(proxy: ServiceProcess, http: aiohttp.ClientSession, lenser: UUID):
    """A stream of the built-in provider, paced so it is still running when the process dies."""
    response = await http.post(
        f"{proxy.url}/execute/stream",
        json={"provider": "local", "model": "local-small", "max_tokens": 20, "messages": HELLO},
        headers=bearer(lenser),
    )
    assert response.status == 200, await response.text()
    async for line in response.content:
        if line.startswith(b"event: token"):
            return response
    raise AssertionError("the stream ended before its first token")


@pytest.mark.parametrize(
    "request_kind", ["stream of the local provider", "buffered call to a hanging OpenAI"]
)
async def test_killed_mid_request_the_reservation_expires_and_is_released_whole(
    request_kind, start_proxy, driver, lenser, wallet_db, db
):
    await driver.fund(lenser, 1000)
    hanging = await FakeOpenAI(api_key="sk-platform").start()
    hanging.hang()
    proxy = await start_proxy(
        RESERVATION_TTL_SECONDS=str(TTL_SECONDS),
        LOCAL_TOKEN_DELAY_MS="1000",  # 20 tokens: 20 s, far longer than the test waits
        OPENAI_API_URL=hanging.url,
        OPENAI_API_KEY="sk-platform",
    )
    async with aiohttp.ClientSession() as http:
        if request_kind.startswith("stream"):
            in_flight = asyncio.create_task(first_token_of_a_slow_stream(proxy, http, lenser))
            await asyncio.wait_for(asyncio.shield(in_flight), timeout=30)
        else:
            in_flight = asyncio.create_task(
                http.post(
                    f"{proxy.url}/execute/wallet",
                    json={"provider": "openai", "model": "gpt-4o-mini", "max_tokens": 50, "messages": HELLO},
                    headers=bearer(lenser),
                )
            )

            async def provider_called() -> bool:
                return len(hanging.requests) == 1

            await eventually(provider_called, timeout=30)
        [held] = await reservations_of(wallet_db, lenser)
        assert held["status"] == "reserved"
        assert (await driver.balance(lenser))["reserved"] == held["amount"]

        proxy.kill()
        with contextlib.suppress(aiohttp.ClientError, AssertionError):
            await (await in_flight).read()
    await hanging.stop()

    async def released() -> bool:
        [reservation] = await reservations_of(wallet_db, lenser)
        return reservation["status"] == "expired"

    await eventually(released, timeout=30)  # the TTL (no process left to extend it), then the expiry loop
    balance = await driver.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["lifetime_spent"]) == (1000, 0, 0)
    assert await db.fetchval("SELECT count(*) FROM executions") == 0  # nothing recorded, nothing relayed
    assert await driver.trial_balance() == 0


# --- killed mid-settlement ---------------------------------------------------------------------


async def duplicates_skipped(wallet, routing_key: str) -> float:
    """wallet-api's count of messages its inbox already had (its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(wallet.make_url("/metrics")) as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "messages_duplicate_total" and sample.labels.get("routing_key") == routing_key:
                return sample.value
    return 0.0


async def executed_but_not_relayed(start_proxy: StartProxy, amqp_url: str, lenser: UUID, db, **env: str):
    """An execution answered and recorded by a process that cannot reach RabbitMQ (the outcome
    waits in its log): (the process, the credits charged)."""
    proxy = await start_proxy(AMQP_URL=unreachable(amqp_url), **env)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{proxy.url}/execute/wallet",
            json={"provider": "local", "model": "local-small", "max_tokens": 5, "messages": HELLO},
            headers=bearer(lenser),
        ) as response,
    ):
        assert response.status == 200, await response.text()
        answered = (await response.json())["data"]
    execution_id = UUID(answered["executionId"])
    assert (
        await db.fetchval("SELECT status FROM executions WHERE execution_id = $1", execution_id)
        == "succeeded"
    )
    return proxy, answered["creditsCharged"]


async def test_killed_before_its_settlement_was_relayed_the_next_process_charges_it_exactly_once(
    start_proxy, driver, lenser, wallet, wallet_db, db, amqp_url, database_url
):
    await driver.fund(lenser, 1000)
    proxy, charged = await executed_but_not_relayed(start_proxy, amqp_url, lenser, db)
    [held] = await reservations_of(wallet_db, lenser)
    assert held["status"] == "reserved"  # durable at execution-proxy, not yet told to the wallet

    proxy.kill()
    proxy = await start_proxy()  # a working broker again

    async def captured() -> bool:
        [reservation] = await reservations_of(wallet_db, lenser)
        return reservation["status"] == "captured"

    await eventually(captured, timeout=60)  # the dead process's relay lease expires first
    await assert_charged_once(driver, wallet_db, lenser, charged, how="ReservationCaptured")
    [reservation] = await reservations_of(wallet_db, lenser)
    assert reservation["captured"] == charged

    # Published again, as after a crash between the broker's confirm and the relay's checkpoint:
    # stop the relay, put its checkpoint back to the start of the log, and let a new process relay.
    proxy.kill()
    before = await duplicates_skipped(wallet, SETTLED)
    owner = await asyncpg.connect(database_url)
    try:
        await owner.execute(
            "UPDATE execution.follower_checkpoints SET transaction_id = 0, position = 0 WHERE name = 'relay'"
        )
    finally:
        await owner.close()
    await start_proxy()

    async def delivered_again() -> bool:
        return await duplicates_skipped(wallet, SETTLED) > before

    await eventually(delivered_again, timeout=60)
    await assert_charged_once(driver, wallet_db, lenser, charged, how="ReservationCaptured")


async def test_a_settlement_relayed_after_its_reservation_expired_is_still_charged_once(
    start_proxy, driver, lenser, wallet_db, db, amqp_url
):
    await driver.fund(lenser, 1000)
    proxy, charged = await executed_but_not_relayed(
        start_proxy, amqp_url, lenser, db, RESERVATION_TTL_SECONDS=str(TTL_SECONDS)
    )

    async def expired() -> bool:
        [reservation] = await reservations_of(wallet_db, lenser)
        return reservation["status"] == "expired"

    await eventually(expired, timeout=30)  # the settlement is late: the wallet released the hold
    assert (await driver.balance(lenser))["lifetime_spent"] == 0
    proxy.kill()
    await start_proxy()

    async def charged_late() -> bool:
        return (await driver.balance(lenser))["lifetime_spent"] > 0

    await eventually(charged_late, timeout=60)  # the work was done: the wallet charges it anyway
    await assert_charged_once(driver, wallet_db, lenser, charged, how="ExpiredReservationCharged")


async def assert_charged_once(
    driver, wallet_db: asyncpg.Pool, lenser: UUID, charged: int, *, how: str
) -> None:
    charges = await wallet_db.fetch(
        "SELECT type FROM events WHERE stream_id = $1"
        " AND type IN ('ReservationCaptured', 'ExpiredReservationCharged')",
        f"wallet-{lenser}",
    )
    assert [charge["type"] for charge in charges] == [how]
    balance = await driver.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["lifetime_spent"]) == (
        1000 - charged,
        0,
        charged,
    )
    assert await driver.trial_balance() == 0
