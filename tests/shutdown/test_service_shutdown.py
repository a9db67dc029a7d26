"""A stopped service is gone within its deadline, whatever its background work is waiting on.

Each service runs as a real process with SHUTDOWN_TIMEOUT_SECONDS=2, so ``lf_web.run``'s deadline
is 2 x 2 + 5 = 9 s, and gets SIGTERM while its followers, relay, consumer and periodic jobs are
waiting on a broker that accepts connections and never answers and on a database that stopped
answering, or while a message is stuck in its handler. Graceful means exit status 0 well before
the deadline; the deadline is the backstop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import aio_pika
import aiohttp
import asyncpg
import pytest

from lf_contracts.events import CreditsPurchasedV1
from lf_messaging import publish
from lf_testing.processes import ServiceProcess
from lf_testing.silent import FreezableProxy, SilentServer
from lf_testing.waiting import eventually

pytestmark = pytest.mark.slow

SHUTDOWN_TIMEOUT = 2
DEADLINE = 2 * SHUTDOWN_TIMEOUT + 5
KEY = "shutdown-test-platform-api-key-0123456789abcdef"
SERVICES = {
    "wallet_api": {"DB_ROLE": "wallet_api"},
    "billing_webhook": {
        "DB_ROLE": "billing_webhook",
        "LEMONSQUEEZY_WEBHOOK_SECRET": "shutdown-test-webhook-secret-0123456789abcdef",
        "SEED_CREDIT_PACKS": "true",
    },
}


@pytest.fixture
async def silent_broker() -> AsyncIterator[SilentServer]:
    server = await SilentServer().start()
    yield server
    await server.close()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def _service(package: str, database_url: str, amqp_url: str) -> ServiceProcess:
    return ServiceProcess(
        package,
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "PLATFORM_API_KEY": KEY,
            "SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT),
            "EXPIRY_INTERVAL_SECONDS": "0.2",
            "CHECKOUT_EXPIRY_INTERVAL_SECONDS": "0.2",
            **SERVICES[package],
        },
    )


async def _give_the_relay_work(service: ServiceProcess) -> None:
    """An event to publish (wallet: a grant); billing relays its seeded catalogue by itself."""
    if service.package != "wallet_api":
        return
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{service.url}/internal/wallets/{uuid4()}/grants",
            json={"amount": 5, "reason": "shutdown test", "idempotencyKey": str(uuid4())},
            headers={"X-Platform-Api-Key": KEY},
        ) as response,
    ):
        assert response.status == 201, await response.text()


async def _stop(service: ServiceProcess) -> tuple[int, float]:
    started = time.monotonic()
    status = await service.terminate_within(DEADLINE + 1)
    return status, time.monotonic() - started


@pytest.mark.parametrize("package", list(SERVICES))
async def test_a_service_whose_broker_and_database_stopped_answering_stops_in_time(
    package: str, database_url: str, silent_broker: SilentServer
) -> None:
    """The broker accepts connections and never answers (the relay and the consumer wait on it);
    then the database hangs too (connections open, no answer): followers, periodic jobs, the LISTEN
    connection and the pool all wait on it. Before: the pool's close waited for ever.

    (A broker that never answers alone, or a database that refuses connections, already stopped
    in time before this change; they are covered here as parts of the worse case.)"""
    server = urlsplit(database_url)
    proxy = await FreezableProxy(server.hostname or "127.0.0.1", server.port or 5432).start()
    service = _service(
        package, _through(database_url, proxy.port), f"amqp://guest:guest@127.0.0.1:{silent_broker.port}/"
    )
    try:
        await service.start()
        await _give_the_relay_work(service)
        await asyncio.sleep(1)  # followers active, the relay and the consumer waiting on the broker
        proxy.freeze()
        await asyncio.sleep(1.5)  # every follower's next batch and every job now hang on the database
        status, seconds = await _stop(service)
    finally:
        service.stop()
        await proxy.close()
    assert status == 0, f"exit status {status} after {seconds:.1f} s"
    assert seconds < DEADLINE


async def test_a_service_with_a_message_stuck_in_its_handler_stops_in_time(
    database_url: str, amqp_url: str
) -> None:
    """The consumer gives in-flight messages a bounded time (half the deadline), then cancels them
    (unacked, they return to the queue). Before: 30 s, whatever the service's shutdown timeout."""
    service = _service("wallet_api", database_url, amqp_url)
    blocker = await asyncpg.connect(database_url)
    try:
        await service.start()
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)

            async def consuming() -> bool:  # bound and consumed: a message now reaches the handler
                probe = await connection.channel()
                try:
                    queue = await probe.declare_queue("wallet-api.events", passive=True)
                    return queue.declaration_result.consumer_count > 0
                except aio_pika.exceptions.ChannelClosed:
                    return False

            await eventually(consuming, timeout=20)
            # The handler's first statement (the inbox insert) waits behind this lock.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE wallet.inbox IN ACCESS EXCLUSIVE MODE")
            purchase = CreditsPurchasedV1(
                occurred_at=datetime.now(UTC),
                order_id="stuck-1",
                lenser_id=uuid4(),
                credits=5,
                amount_cents=5,
                currency="USD",
            )
            await publish(channel, purchase, message_id=str(uuid4()))

            async def handler_waiting() -> bool:
                return bool(
                    await blocker.fetchval(
                        "SELECT count(*) FROM pg_locks"
                        " WHERE NOT granted AND relation = 'wallet.inbox'::regclass"
                    )
                )

            await eventually(handler_waiting, timeout=20)
            status, seconds = await _stop(service)
            await transaction.rollback()
    finally:
        service.stop()
        await blocker.close()
    assert status == 0, f"exit status {status} after {seconds:.1f} s"
    assert seconds < DEADLINE
