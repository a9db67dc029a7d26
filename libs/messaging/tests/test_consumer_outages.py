"""A database outage delays messages; it never counts against them (issue 6 §1)."""

import asyncio
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from lf_contracts.events import CreditsPurchasedV1
from lf_messaging import Consumer, declare_consumer_queue, publish
from lf_messaging.outage import DatabaseUnavailable, is_outage
from lf_pg import create_pool
from lf_testing.proxy import TcpProxy

SERVICE = "wallet"
SCHEMA = "svc"


def purchase(order_id):
    return CreditsPurchasedV1(
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        order_id=order_id,
        lenser_id=uuid.UUID("6f1c1d2e-0000-4000-8000-000000000001"),
        credits=100,
        amount_cents=500,
        currency="USD",
    )


async def record(conn, event, context):
    await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.order_id, context.message_id)


async def applied(pool):
    async with pool.acquire() as conn:
        return sorted(tuple(r) for r in await conn.fetch("SELECT order_id, message_id FROM applied"))


async def taken(channel, name):
    """Every message now in ``name``, taken off it (a quorum queue's declare-ok count lags)."""
    queue = await channel.get_queue(name)
    ids = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        ids.append(message.message_id)
    return ids


@pytest.fixture
async def pg_proxy(database_url):
    """PostgreSQL behind a proxy the test can cut; yields (proxy, url through it)."""
    parts = urlsplit(database_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
    yield proxy, urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    await proxy.cut()


@pytest.fixture
async def running():
    started = []

    async def run(consumer):
        task = asyncio.create_task(consumer.run())
        started.append((consumer, task))
        await asyncio.wait_for(consumer.consuming.wait(), 10)
        return task

    yield run
    for consumer, task in started:
        await consumer.stop(timeout=2)
        await asyncio.gather(task, return_exceptions=True)


async def test_messages_queued_during_a_database_outage_are_applied_once_after_it_and_none_dead_lettered(
    pool, pg_proxy, broker, channel, running, eventually, metric
):
    proxy, proxied_url = pg_proxy
    proxied = await create_pool(proxied_url, SCHEMA, min_size=1, max_size=4)
    # One failure would dead-letter a message, and retries are quick: before this change the
    # outage dead-lettered every message within a fraction of a second.
    consumer = Consumer(
        SERVICE,
        broker,
        proxied,
        {CreditsPurchasedV1: record},
        delivery_limit=1,
        retry_delay=0.01,
        acquire_timeout=0.5,
        outage_max_backoff=0.2,
        accept_unidentified=True,
    )
    try:
        await running(consumer)
        await proxy.cut()
        for n in range(10):
            await publish(channel, purchase(f"o-{n}"), message_id=f"m-{n}")

        await eventually(lambda: consumer.health() is not None, timeout=10)
        await asyncio.sleep(2)  # the outage goes on: far longer than the retries would have taken
        reason = consumer.health()
        assert reason is not None and reason.startswith("waiting for the database")
        assert await taken(channel, f"{SERVICE}.dlq") == []
        await proxy.start()

        await eventually(lambda: _count(pool, 10), timeout=20)
        await eventually(lambda: consumer.health() is None)
        assert await applied(pool) == sorted((f"o-{n}", f"m-{n}") for n in range(10))
        assert await taken(channel, f"{SERVICE}.dlq") == []
        assert await taken(channel, f"{SERVICE}.events") == []
    finally:
        await proxied.close()


async def test_an_exhausted_pool_holds_the_message_instead_of_failing_it(
    pool, broker, channel, running, eventually
):
    consumer = Consumer(
        SERVICE,
        broker,
        pool,
        {CreditsPurchasedV1: record},
        delivery_limit=0,
        acquire_timeout=0.2,
        accept_unidentified=True,
    )
    await running(consumer)
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        await publish(channel, purchase("o-1"), message_id="m-1")
        await eventually(lambda: consumer.health() is not None)
        await asyncio.sleep(0.5)
    finally:
        for conn in held:
            await pool.release(conn)

    await eventually(lambda: _count(pool, 1))
    assert await taken(channel, f"{SERVICE}.dlq") == []


async def test_a_statement_timeout_is_the_messages_own_failure_and_dead_letters_it(
    pool, broker, channel, running, eventually
):
    async def slow(conn, event, context):
        await conn.execute("SET LOCAL statement_timeout = 50")
        await conn.execute("SELECT pg_sleep(1)")

    consumer = Consumer(
        SERVICE,
        broker,
        pool,
        {CreditsPurchasedV1: slow},
        delivery_limit=1,
        retry_delay=0.01,
        accept_unidentified=True,
    )
    await running(consumer)
    await publish(channel, purchase("o-1"), message_id="m-1")
    dead = []

    async def dead_lettered():
        dead.extend(await taken(channel, f"{SERVICE}.dlq"))
        return dead == ["m-1"]

    await eventually(dead_lettered)
    assert consumer.health() is None  # the database was fine all along


async def test_a_consumer_whose_task_died_says_why_on_its_health_check(pool, broker, channel):
    await declare_consumer_queue(channel, SERVICE, [purchase("x").routing_key], delivery_limit=3)
    consumer = Consumer(SERVICE, broker, pool, {CreditsPurchasedV1: record})

    assert consumer.health() is None
    with pytest.raises(Exception, match="PRECONDITION_FAILED"):
        await asyncio.wait_for(consumer.run(), 10)
    reason = consumer.health()
    assert reason is not None and reason.startswith("stopped: ChannelPreconditionFailed")


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (DatabaseUnavailable("pool exhausted"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), True),
        (asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"), False),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_outages_are_told_apart_from_a_messages_own_failures(error, outage):
    assert is_outage(error) is outage


def test_a_failure_raised_while_the_connection_was_lost_is_an_outage():
    try:
        try:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        except Exception as lost:
            raise RuntimeError("rollback failed") from lost
    except RuntimeError as error:
        assert is_outage(error)


async def _count(pool, expected):
    return len(await applied(pool)) == expected
