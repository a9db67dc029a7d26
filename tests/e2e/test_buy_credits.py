"""Flow 1 end to end, through the gateway: checkout, a signed LemonSqueezy delivery, the balance.

wallet-api and billing-webhook run as real processes on one database (each in its own schema, as
its own role) and one RabbitMQ vhost; nginx runs infra/gateway's config in front of them; only
LemonSqueezy is a fake, on 127.0.0.1, speaking its JSON:API.
"""

from __future__ import annotations

from uuid import uuid4

import aiohttp
import pytest

from lf_testing.fakes.lemonsqueezy import FakeLemonSqueezy, encode, headers, order
from lf_testing.processes import Gateway, ServiceProcess, nginx_binary
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually, queue_declared

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx (the gateway) is not installed"),
]
SECRET = "e2e-webhook-secret"
KEY = "e2e-platform-key"


@pytest.fixture
async def system(database_url, amqp_url):
    fake = await FakeLemonSqueezy().start()
    common = {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "PLATFORM_API_KEY": KEY}
    billing = ServiceProcess(
        "billing_webhook",
        {
            **common,
            "DB_ROLE": "billing_webhook",
            "LEMONSQUEEZY_API_URL": fake.url,
            "LEMONSQUEEZY_WEBHOOK_SECRET": SECRET,
            "SEED_CREDIT_PACKS": "true",
        },
    )
    wallet = ServiceProcess(
        "wallet_api", {**common, "DB_ROLE": "wallet_api", "BILLING_WEBHOOK_URL": billing.url}
    )
    gateway = Gateway(
        {
            "WALLET_API_UPSTREAM": f"127.0.0.1:{wallet.port}",
            "BILLING_WEBHOOK_UPSTREAM": f"127.0.0.1:{billing.port}",
        }
    )
    try:
        # Consumers declare their queues when they start; a message published before its queue
        # exists is dropped by the broker. So consumers first, as a deployment would order them
        # (or pre-declare the queues: infra/rabbitmq).
        await wallet.start()
        await queue_declared(amqp_url, "wallet-api.events")
        await billing.start()
        await gateway.start()
        async with aiohttp.ClientSession(base_url=gateway.url) as http:
            yield http, fake
    finally:
        gateway.stop()
        wallet.stop()
        billing.stop()
        await fake.close()


async def test_a_lenser_buys_a_credit_pack_and_sees_the_credits_through_the_gateway(system):
    http, fake = system
    lenser = uuid4()
    auth = bearer(lenser)

    async def pack_on_sale() -> bool:
        async with http.get("/wallet/products", headers=auth) as response:
            products = (await response.json())["data"]["products"]
        return any(p["variantId"] == "dev-550" for p in products)

    await eventually(pack_on_sale, timeout=30)  # billing's seeded catalogue, relayed to wallet-api

    async with http.post("/wallet/checkout", json={"variantId": "dev-550"}, headers=auth) as response:
        assert response.status == 201, await response.text()
        checkout = (await response.json())["data"]
    assert checkout["checkoutUrl"].startswith("https://")
    session_id = fake.checkouts[-1].body["data"]["attributes"]["checkout_data"]["custom"]["session_id"]

    body = encode(order(7001, session_id=session_id, variant_id="dev-550", total=500))
    for _ in range(3):  # LemonSqueezy retries, operators resend: credited once all the same
        async with http.post("/webhook/lemonsqueezy", data=body, headers=headers(body, SECRET)) as response:
            assert response.status == 200, await response.text()

    async def credited() -> bool:
        async with http.get("/wallet/balance", headers=auth) as response:
            return response.status == 200 and (await response.json())["data"]["balance"] == 550

    await eventually(credited, timeout=30)

    async def deposit_listed() -> bool:
        async with http.get("/wallet/transactions", headers=auth) as response:
            rows = (await response.json())["data"]
        return [(t["txType"], t["amount"], t["balanceAfter"], t["referenceId"]) for t in rows] == [
            ("deposit", 550, 550, "7001")
        ]

    await eventually(deposit_listed, timeout=10)
