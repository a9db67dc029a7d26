"""Fixtures for messaging tests: a migrated schema, a broker, a test-side channel, and helpers.

Helpers are handed out as fixtures because test modules are imported in importlib mode and
cannot import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
from prometheus_client import REGISTRY

import lf_eventstore
import lf_messaging
import lf_projections
from lf_messaging import Broker, connect, declare_exchanges
from lf_pg import create_pool, migrate

SCHEMA = "svc"


@pytest.fixture
async def pool(database_url):
    await migrate(
        database_url, SCHEMA, [lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS, lf_messaging.MIGRATIONS]
    )
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=20)
    async with pool.acquire() as conn:
        # Where test handlers leave their effect; deliberately without a unique key, so an effect
        # applied twice would show as two rows.
        await conn.execute("CREATE TABLE applied (order_id text NOT NULL, message_id text NOT NULL)")
    yield pool
    await pool.close()


@pytest.fixture
async def broker(amqp_url):
    broker = Broker(amqp_url, reconnect_interval=0.1)
    await broker.start()
    await broker.wait_up(10)
    yield broker
    await broker.close()


@pytest.fixture
async def channel(amqp_url):
    """The test's own connection (never through a proxy), to inject and inspect messages."""
    connection = await connect(amqp_url)
    channel = await connection.channel()
    await declare_exchanges(channel)
    yield channel
    await connection.close()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    async def eventually(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
        """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = condition()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"condition not met within {timeout} s")
            await asyncio.sleep(0.02)

    return eventually


@pytest.fixture
def metric() -> Callable[..., float]:
    def metric(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return metric


class TcpProxy:
    """A TCP relay to RabbitMQ that a test can take down (dropping live connections) and bring back
    on the same port: a broker outage without touching the shared broker."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.target_port = host, port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._sessions: set[asyncio.Task] = set()

    def url(self, amqp_url: str) -> str:
        parts = urlsplit(amqp_url)
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _session(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        self._sessions.add(task)
        writers = [client_writer]
        self._writers.add(client_writer)
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.target_port)
            except OSError:
                return
            writers.append(upstream_writer)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
                return_exceptions=True,
            )
        finally:
            for writer in writers:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                self._writers.discard(writer)
            self._sessions.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def proxy(amqp_url):
    """A proxy to the test's RabbitMQ, created down; its port is reserved for ``up()``."""
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.up()
    await proxy.down()
    yield proxy
    await proxy.down()
