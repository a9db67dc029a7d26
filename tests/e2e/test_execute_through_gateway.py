"""AI on credits end to end, through the gateway, with the official ``openai`` package as the client.

wallet-api and execution-proxy run as real processes on one database (each in its own schema, as
its own role) and one RabbitMQ vhost; nginx runs infra/gateway's config in front of them. The model
is execution-proxy's built-in ``local`` provider, paced like a real stream, so no key is needed.
"""

from __future__ import annotations

from uuid import uuid4

import aiohttp
import pytest
from openai import AsyncOpenAI

from lf_testing.processes import Gateway, ServiceProcess, nginx_binary
from lf_testing.tokens import bearer, make_token
from lf_testing.waiting import eventually, queue_declared

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx (the gateway) is not installed"),
]
KEY = "e2e-platform-key"
HELLO = [{"role": "user", "content": "Hello through the gateway"}]


@pytest.fixture
async def system(database_url, amqp_url):
    common = {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "PLATFORM_API_KEY": KEY}
    wallet = ServiceProcess("wallet_api", {**common, "DB_ROLE": "wallet_api"})
    execution = ServiceProcess(
        "execution_proxy",
        {
            **common,
            "DB_ROLE": "execution_proxy",
            "WALLET_API_URL": wallet.url,
            "SEED_CATALOGUE": "true",
            "LOCAL_TOKEN_DELAY_MS": "5",
        },
    )
    gateway = Gateway(
        {
            "WALLET_API_UPSTREAM": f"127.0.0.1:{wallet.port}",
            "EXECUTION_PROXY_UPSTREAM": f"127.0.0.1:{execution.port}",
        }
    )
    try:
        # wallet-api's consumer first: the settlements execution-proxy relays must find its queue.
        await wallet.start()
        await queue_declared(amqp_url, "wallet-api.events")
        await execution.start()
        await gateway.start()
        yield wallet, gateway
    finally:
        gateway.stop()
        execution.stop()
        wallet.stop()


async def test_the_openai_sdk_spends_credits_through_the_gateway(system):
    wallet, gateway = system
    lenser = uuid4()
    async with aiohttp.ClientSession() as http:
        grant = {"amount": 1000, "reason": "e2e", "idempotencyKey": str(uuid4())}
        async with http.post(
            f"{wallet.url}/internal/wallets/{lenser}/grants", json=grant, headers={"X-Platform-Api-Key": KEY}
        ) as response:
            assert response.status == 201, await response.text()

    async with AsyncOpenAI(
        base_url=f"{gateway.url}/execute/openai/v1", api_key=make_token(str(lenser)), max_retries=0
    ) as client:
        completion = await client.chat.completions.create(model="local-small", messages=HELLO, max_tokens=20)
        stream = await client.chat.completions.create(
            model="local-small", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]

    assert completion.choices[0].message.content
    assert completion.usage is not None
    buffered = completion.usage.model_extra["credits_charged"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert len(chunks) > 3 and text  # the deltas arrived one by one, not as one buffered answer
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    streamed = usage.model_extra["credits_charged"]
    assert buffered >= 1 and streamed >= 1

    async def charged() -> bool:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gateway.url}/wallet/balance", headers=bearer(lenser)) as response,
        ):
            balance = (await response.json())["data"]
        return (balance["balance"], balance["reserved"]) == (1000 - buffered - streamed, 0)

    await eventually(charged, timeout=30)
