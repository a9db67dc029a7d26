"""Connecting to RabbitMQ without making the service depend on it being up.

A broker outage must delay messages, never stop the HTTP API (DESIGN §5). So a service holds a
``Broker``: ``start()`` returns at once and connects in the background, retrying until RabbitMQ
answers; after that, aio-pika's robust connection reconnects by itself and restores channels,
queues and consumers. Code that needs the broker asks for a channel and gets ``BrokerUnavailable``
at once while it is down (the relay's batch then rolls back and is retried), and ``/health`` asks
``is_up()``.
"""

from __future__ import annotations

import asyncio
from urllib.parse import unquote, urlsplit

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

log = structlog.get_logger(__name__)


class BrokerUnavailable(Exception):
    """RabbitMQ is not connected right now; retry later (nothing was sent)."""


async def connect(
    amqp_url: str, *, timeout: float = 10.0, reconnect_interval: float = 1.0
) -> AbstractRobustConnection:
    """A robust connection, or an error at once if RabbitMQ cannot be reached now (CLI, tests)."""
    return await aio_pika.connect_robust(amqp_url, timeout=timeout, reconnect_interval=reconnect_interval)


class Broker:
    """The one RabbitMQ connection of a process, connected in the background."""

    def __init__(
        self, amqp_url: str, *, reconnect_interval: float = 1.0, connect_timeout: float = 10.0
    ) -> None:
        self.amqp_url = amqp_url
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self._connection: AbstractRobustConnection | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin connecting and return at once; the connection keeps retrying until it is up."""
        if self._connection is not None:
            return
        # fail_fast=False: the first attempt retries like a reconnection instead of raising.
        self._connection = aio_pika.RobustConnection(
            self.amqp_url, fail_fast=False, reconnect_interval=self.reconnect_interval
        )
        self._connection.close_callbacks.add(self._on_lost)
        self._connection.reconnect_callbacks.add(self._on_reconnected)
        self._connecting = asyncio.create_task(self._connect(self._connection))

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _connect(self, connection: AbstractRobustConnection) -> None:
        await connection.connect(timeout=self.connect_timeout)
        log.info("broker.connected", broker=self._safe_url())

    def _on_lost(self, _connection: object, exc: BaseException | None = None) -> None:
        if self._connection is not None and not self._connection.close_called:
            log.warning("broker.connection_lost", broker=self._safe_url(), error=repr(exc))

    def _on_reconnected(self, _connection: object) -> None:
        log.info("broker.reconnected", broker=self._safe_url())

    @property
    def user(self) -> str:
        """The login, which publishers set as ``user_id`` (AMQP's default is guest)."""
        username = urlsplit(self.amqp_url).username
        return unquote(username) if username else "guest"

    def is_up(self) -> bool:
        connection = self._connection
        return connection is not None and not connection.is_closed and connection.connected.is_set()

    async def wait_up(self, timeout: float | None = None) -> None:
        """Wait until connected (``TimeoutError`` after ``timeout``); ``start()`` must have run."""
        if self._connection is None:
            raise BrokerUnavailable("Broker.start() was not called")
        await asyncio.wait_for(self._connection.connected.wait(), timeout)

    async def channel(self, *, timeout: float = 10.0) -> AbstractRobustChannel:
        """A new channel with publisher confirms, owned (and closed) by the caller."""
        connection = self._connection
        if connection is None or not self.is_up():
            raise BrokerUnavailable(f"RabbitMQ is not connected ({self._safe_url()})")
        try:
            channel = connection.channel(publisher_confirms=True)
            await asyncio.wait_for(channel.initialize(), timeout)
        except (TimeoutError, *CONNECTION_EXCEPTIONS) as exc:
            raise BrokerUnavailable(f"cannot open a channel on {self._safe_url()}: {exc!r}") from exc
        return channel  # type: ignore[return-value]  # a robust connection's channels are robust

    async def close(self) -> None:
        connecting, self._connecting = self._connecting, None
        connection, self._connection = self._connection, None
        try:
            if connecting is not None:
                connecting.cancel()
                # asyncio.wait, not `suppress(CancelledError): await connecting`: that also
                # swallowed a cancellation of close() itself (a shutdown past its deadline).
                await asyncio.wait([connecting])
                if not connecting.cancelled():
                    connecting.exception()  # retrieved: a failed first connection is no news now
        finally:
            # Even when close() is cancelled: only close() stops aio-pika's reconnection loop (it
            # swallows cancellation until then), which would otherwise retry for ever.
            if connection is not None:
                await connection.close()

    def _safe_url(self) -> str:
        parts = urlsplit(self.amqp_url)
        host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        return f"{parts.scheme}://{host}{parts.path}"
