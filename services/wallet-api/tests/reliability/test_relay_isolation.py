"""A hanging broker delays only the relay that waits on it (issue 6 §4).

PostgreSQL's read horizon is shared by the whole server: a transaction held open anywhere keeps
every log follower, of every service and database, from seeing what committed after it began. So
billing-webhook's relay, stuck on a broker that accepts connections and never answers, must not
hold a transaction open while it waits, or wallet-api's ledger stops following.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from billing_webhook.app import MIGRATIONS as BILLING_MIGRATIONS
from billing_webhook.app import RELAY as BILLING_RELAY
from billing_webhook.app import SCHEMA as BILLING_SCHEMA
from billing_webhook.app import create_app as create_billing_app
from billing_webhook.settings import BillingSettings
from lf_pg import migrate
from lf_testing.proxy import TcpProxy
from lf_testing.waiting import eventually

INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}


@pytest.fixture
async def broker_proxy(amqp_url):
    parts = urlsplit(amqp_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    yield proxy, urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    proxy.thaw()
    await proxy.cut()


@pytest.fixture
async def billing(settings, broker_proxy):
    """billing-webhook on the same PostgreSQL server as wallet-api, its broker behind the proxy."""
    proxy, amqp_url = broker_proxy
    billing_settings = BillingSettings(
        database_url=settings.database_url,
        amqp_url=amqp_url,
        db_role="billing_webhook",
        platform_api_key=INTERNAL["X-Platform-Api-Key"],
    )
    await migrate(billing_settings.database_url, BILLING_SCHEMA, BILLING_MIGRATIONS, role="billing_webhook")
    client = TestClient(TestServer(create_billing_app(billing_settings)))
    await client.start_server()
    try:
        yield client
    finally:
        proxy.thaw()  # let it shut down without waiting out the hang
        await client.close()


@pytest.fixture
async def admin(settings):
    """The database's owner, to read both services' schemas."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def relay_checkpoint(db, relay: str):
    return await db.fetchrow(
        f"SELECT transaction_id, position FROM {BILLING_SCHEMA}.follower_checkpoints WHERE name = $1", relay
    )


async def test_a_relay_stuck_on_a_hanging_broker_does_not_hold_back_another_services_ledger(
    api, billing, broker_proxy, admin
):
    db = admin
    proxy, _ = broker_proxy
    await put_pack(billing, "v-before")
    # Billing's relay has a live broker connection and channel: it relayed that pack.
    await eventually(lambda: _relayed_everything(db), timeout=20)
    proxy.freeze()
    await put_pack(billing, "v-during")
    before = await relay_checkpoint(db, BILLING_RELAY)
    await asyncio.sleep(0.5)  # the relay has read the change and waits on the frozen broker
    assert await relay_checkpoint(db, BILLING_RELAY) == before

    lenser = uuid4()
    started = time.monotonic()
    response = await api.post(
        f"/internal/wallets/{lenser}/grants",
        json={"amount": 25, "reason": "hang test", "idempotencyKey": str(uuid4())},
        headers=INTERNAL,
    )
    assert response.status == 201

    async def in_the_ledger() -> bool:
        balance = await db.fetchval(
            "SELECT sum(amount) FROM wallet.ledger_postings WHERE account = $1", f"user:{lenser}:available"
        )
        return balance == 25

    await eventually(in_the_ledger, timeout=10)
    # The ledger wakes on the grant's NOTIFY; on a server shared with other work it may instead
    # need its next 1 s poll. Before this change it waited out the relay's 10 s confirm timeout.
    assert time.monotonic() - started < 1.5, "wallet's ledger waited on billing's relay"
    assert await relay_checkpoint(db, BILLING_RELAY) == before  # billing's relay is still stuck


async def put_pack(billing: TestClient, variant_id: str) -> None:
    response = await billing.put(
        f"/internal/credit-packs/{variant_id}",
        json={"productId": "p-1", "name": variant_id, "creditsGranted": 7, "priceCents": 100},
        headers=INTERNAL,
    )
    assert response.status in (200, 201), await response.text()


async def _relayed_everything(db) -> bool:
    head = await db.fetchrow(
        f"SELECT transaction_id::text::bigint AS transaction_id, position FROM {BILLING_SCHEMA}.events"
        " ORDER BY transaction_id DESC, position DESC LIMIT 1"
    )
    at = await relay_checkpoint(db, BILLING_RELAY)
    return head is not None and at is not None and tuple(at) >= tuple(head)
