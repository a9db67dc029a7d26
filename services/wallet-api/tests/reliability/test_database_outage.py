"""wallet-api's database refused for 60 s with purchases and settlements queued (issue 6 §1).

Before this change the consumer counted every failed attempt against the message: with the
database away for 25 s, a purchase was dead-lettered after about 18 s and never credited. Now an
outage holds the deliveries, /health says why, and when the database is back every message is
applied exactly once, nothing is dead-lettered, and the ledger balances.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import aio_pika
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_contracts.events import CreditsPurchasedV1, ExecutionSettledV1
from lf_messaging import dead_letter_queue, events_queue, publish
from lf_testing.proxy import TcpProxy
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from wallet_api.app import SERVICE, create_app

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 60  # the figure: far beyond every retry the consumer used to allow
PURCHASES = 10
SETTLEMENTS = 5


@pytest.fixture
async def pg_proxy(settings):
    parts = urlsplit(settings.database_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def proxied_api(settings, pg_proxy):
    """wallet-api with every background worker, its database behind the proxy."""
    parts = urlsplit(settings.database_url)
    netloc = f"{parts.username}@127.0.0.1:{pg_proxy.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    client = TestClient(TestServer(create_app(settings.model_copy(update={"database_url": url}))))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


class Wallet:
    """Just enough of the API and the database for this test (the shared driver brings an app
    of its own, which would consume the queue around the outage)."""

    def __init__(self, api: TestClient, db, api_key: str) -> None:
        self.api, self.db, self.internal = api, db, {"X-Platform-Api-Key": api_key}

    async def grant(self, lenser, amount: int):
        return await self.api.post(
            f"/internal/wallets/{lenser}/grants",
            json={"amount": amount, "reason": "outage test", "idempotencyKey": str(uuid4())},
            headers=self.internal,
        )

    async def reserve(self, lenser, amount: int, reference_id: str):
        body = {"lenserId": str(lenser), "amount": amount, "referenceId": reference_id}
        return await self.api.post("/internal/reservations", json=body, headers=self.internal)

    async def balance(self, lenser) -> dict:
        response = await self.api.get("/wallet/balance", headers=bearer(lenser))
        assert response.status == 200, await response.text()
        return (await response.json())["data"]

    async def caught_up(self) -> bool:
        return await self.db.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM events e, follower_checkpoints c WHERE c.name = 'ledger'"
            " AND (e.transaction_id::text::bigint, e.position) > (c.transaction_id, c.position))"
        )


async def taken(amqp_url: str, name: str) -> list[str]:
    """Every message now in ``name``, taken off it, on a connection of its own (a quorum queue's
    declare-ok count can lag)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        queue = await (await connection.channel()).get_queue(name)
        ids = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            ids.append(message.message_id)
        return ids


async def test_a_60_s_database_outage_delays_purchases_and_settlements_and_loses_or_doubles_none(
    proxied_api, pg_proxy, db, settings
):
    api = proxied_api
    wallet = Wallet(api, db, settings.platform_api_key)
    buyers = [uuid4() for _ in range(PURCHASES)]
    spenders = [uuid4() for _ in range(SETTLEMENTS)]
    settlements = []
    for n, spender in enumerate(spenders):
        assert (await wallet.grant(spender, 100)).status == 201
        response = await wallet.reserve(spender, 40, reference_id=f"exec-{n}")
        assert response.status == 201, await response.text()
        rid = (await response.json())["data"]["reservationId"]
        settlements.append(
            ExecutionSettledV1(
                occurred_at=datetime.now(UTC),
                execution_id=f"exec-{n}",
                lenser_id=spender,
                reservation_id=rid,
                credits_charged=12,
                provider="local",
                model="local-echo",
            )
        )
    purchases = [
        CreditsPurchasedV1(
            occurred_at=datetime.now(UTC),
            order_id=f"order-{n}",
            lenser_id=buyer,
            credits=100,
            amount_cents=500,
            currency="USD",
        )
        for n, buyer in enumerate(buyers)
    ]

    async def consuming() -> bool:
        async with api.get("/health") as response:
            return (await response.json()).get("consumer") is True

    await eventually(consuming, timeout=20)
    await pg_proxy.cut()
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for n, event in enumerate(purchases):
            await publish(channel, event, message_id=f"purchase-{n}")
        for n, event in enumerate(settlements):
            await publish(channel, event, message_id=f"settlement-{n}")
        # A redelivery of one of each, as a relay that crashed before its checkpoint would send.
        await publish(channel, purchases[0], message_id="purchase-0")
        await publish(channel, settlements[0], message_id="settlement-0")

    async def degraded() -> bool:
        async with api.get("/health") as response:
            body = await response.json()
            return response.status == 503 and body.get("consumer") is False

    await eventually(degraded, timeout=20)
    async with api.get("/health") as response:
        assert "waiting for the database" in (await response.json())["reason"]
    await asyncio.sleep(OUTAGE_SECONDS)
    assert await taken(settings.amqp_url, dead_letter_queue(SERVICE)) == []
    await pg_proxy.start()

    async def everything_applied() -> bool:
        return await db.fetchval("SELECT count(*) FROM inbox") == PURCHASES + SETTLEMENTS

    await eventually(everything_applied, timeout=60)
    await eventually(wallet.caught_up, timeout=30)
    await eventually(consuming, timeout=10)

    assert await taken(settings.amqp_url, dead_letter_queue(SERVICE)) == []
    assert await taken(settings.amqp_url, events_queue(SERVICE)) == []
    for buyer in buyers:
        assert (await wallet.balance(buyer))["balance"] == 100
    for spender in spenders:
        balance = await wallet.balance(spender)
        assert (balance["balance"], balance["reserved"]) == (88, 0)
    deposits = await db.fetchval("SELECT count(*) FROM events WHERE type = 'CreditsDeposited'")
    assert deposits == PURCHASES + SETTLEMENTS  # the purchases and the grants, each once
    assert await db.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_postings") == 0  # trial balance
