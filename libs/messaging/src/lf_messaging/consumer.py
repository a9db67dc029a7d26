"""Consuming integration events with an inbox: each message takes effect once (DESIGN §5).

A service's ``Consumer`` reads its quorum queue ``<service>.events``. Per message:

- a message that can never succeed (no message id, a routing key without a handler, a body that is
  not JSON or fails its model, a publisher that does not own the contract: see
  ``lf_messaging.identity``) is poison: rejected without requeue, so the broker dead-letters it to
  ``<service>.dlq`` at once instead of retrying it;
- otherwise one PostgreSQL transaction records the message id in ``inbox`` and runs the handler;
  a message id already there is a duplicate (a redelivery, or the relay publishing again after a
  crash): commit, ack, skip. Ack only after commit, so a crash in between means a redelivery that
  the inbox absorbs, never a lost effect;
- a database outage (``lf_messaging.outage.is_outage``: refused, lost, pool exhausted, the server
  shutting down or in recovery) is not the message's fault and never counts against it: the
  delivery keeps its message unacked and waits, with every other delivery, until the database
  answers again (``/health`` says degraded meanwhile), then tries again. Nothing is returned to the
  queue, so an outage of any length dead-letters nothing;
- a handler that raises for any other reason (a bug, a poison value, its own statement timeout)
  rolls back and the message is returned to the queue after a growing ``retry_delay`` (0.5, 1,
  2, ... s). The consumer counts these failures itself, per message id, and after
  ``delivery_limit`` retries it rejects the message, which dead-letters it. RabbitMQ's own count
  (``x-delivery-count``) also grows when a channel closes with the message unacked, so the queue's
  ``x-delivery-limit`` is only a high backstop (``topology.DELIVERY_LIMIT_BACKSTOP``).

Messages are handled concurrently, up to ``prefetch`` at a time: aio-pika runs each delivery in a
task of its own and the channel's QoS bounds how many are unacknowledged, so a slow or failing
message never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelNotFoundEntity, ChannelPreconditionFailed
from prometheus_client import Counter
from pydantic import ValidationError

from lf_contracts.events import IntegrationEvent
from lf_eventstore import appends_noted
from lf_messaging.connection import Broker, BrokerUnavailable
from lf_messaging.identity import context_of_user, owning_context
from lf_messaging.outage import DatabaseGate, DatabaseUnavailable, is_outage
from lf_messaging.publisher import CAUSATION_HEADER, REQUEST_ID_HEADER
from lf_messaging.topology import DELIVERY_LIMIT_BACKSTOP, declare_consumer_queue

log = structlog.get_logger(__name__)

MESSAGES_CONSUMED = Counter(
    "messages_consumed_total", "Messages whose handler committed", ["service", "routing_key"]
)
MESSAGES_DUPLICATE = Counter(
    "messages_duplicate_total", "Messages skipped because the inbox had their id", ["service", "routing_key"]
)
MESSAGES_RETRIED = Counter(
    "messages_retried_total",
    "Messages returned to the queue for another attempt after a handler failed",
    ["service", "routing_key"],
)
MESSAGES_REJECTED = Counter(
    "messages_rejected_total", "Poison messages dead-lettered without a retry", ["service", "reason"]
)
MESSAGES_DEAD_LETTERED = Counter(
    "messages_dead_lettered_total",
    "Messages whose handler failed more than the delivery limit allows, dead-lettered",
    ["service", "routing_key"],
)
MESSAGES_HELD_FOR_OUTAGE = Counter(
    "messages_held_for_outage_total",
    "Deliveries that met a database outage and waited for it instead of counting a failure",
    ["service"],
)


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a handler may need besides the payload: ids to log and to carry into what it causes."""

    message_id: str
    routing_key: str
    correlation_id: str
    causation_id: str | None
    headers: Mapping[str, Any]
    redelivered: bool

    def event_metadata(self) -> dict[str, Any]:
        """Metadata for events this message causes: the correlation goes on, the message is the cause."""
        return {
            "correlationId": self.correlation_id or self.message_id,
            "causationId": self.message_id,
            "actor": f"message:{self.routing_key}",
        }


MAX_RETRY_DELAY = 30.0
# Failure counts are kept per message id for messages still being retried; bounded so that a
# flood of distinct failing messages cannot grow the process without limit.
MAX_TRACKED_FAILURES = 10_000

Handler = Callable[[asyncpg.Connection, IntegrationEvent, MessageContext], Awaitable[None]]


class Poison(Exception):
    """A message no retry can fix; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: object = None) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


class Consumer:
    """Consumes ``<service>.events`` into ``handlers`` (one per contract model) until ``stop()``."""

    def __init__(
        self,
        service: str,
        broker: Broker,
        pool: asyncpg.Pool,
        handlers: dict[type[IntegrationEvent], Handler],
        *,
        prefetch: int = 32,
        delivery_limit: int = 5,
        retry_delay: float = 0.5,
        queue_delivery_limit: int = DELIVERY_LIMIT_BACKSTOP,
        acquire_timeout: float = 10.0,
        outage_max_backoff: float = 5.0,
        accept_unidentified: bool = False,
        appended: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.broker = broker
        self.pool = pool
        self.routes: dict[str, tuple[type[IntegrationEvent], Handler]] = {
            model.routing_key: (model, handler) for model, handler in handlers.items()
        }
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.retry_delay = retry_delay
        self.queue_delivery_limit = queue_delivery_limit
        self.acquire_timeout = acquire_timeout
        # Development only: accept messages from a broker user of no context (guest) or none.
        self.accept_unidentified = accept_unidentified
        # Wakes the log's readers after a handler's transaction that appended has committed
        # (``Wakeup.appended``; ``BackgroundWork.consume`` sets the process's).
        self.appended = appended
        self.database = DatabaseGate(pool, name=service, max_backoff=outage_max_backoff)
        self.failed: str | None = None  # why run() ended with an error, for /health
        self._failures: OrderedDict[str, int] = OrderedDict()
        self.consuming = asyncio.Event()  # set while the queue is being consumed (tests, health)
        self._stopping = asyncio.Event()
        self._stop_timeout = 30.0
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._shutdown_lock = asyncio.Lock()
        self._shut_down = False

    @property
    def routing_keys(self) -> list[str]:
        return sorted(self.routes)

    async def run(self) -> None:
        """Wait for the broker, declare the topology, consume until ``stop()``.

        After the first connection, aio-pika's robust channel re-declares the queue and resumes
        consuming by itself whenever the connection comes back. A topology the broker refuses
        (a queue declared elsewhere with other arguments) raises: that is a deployment error.
        """
        try:
            while not self._stopping.is_set():
                channel = await self._wait_for_channel()
                if channel is None:
                    return
                try:
                    await self._start_consuming(channel)
                except (ChannelPreconditionFailed, ChannelNotFoundEntity):
                    raise
                except (TimeoutError, *CONNECTION_EXCEPTIONS):  # lost while starting: start over
                    log.warning("consumer.start_failed", service=self.service, exc_info=True)
                    with contextlib.suppress(Exception):
                        await channel.close()
                    continue
                await self._stopping.wait()
        except Exception as exc:
            # Nothing is consumed any more: say so on /health until someone fixes the deployment.
            self.failed = f"{type(exc).__name__}: {exc}"
            log.error("consumer.died", service=self.service, exc_info=True)
            raise
        finally:
            await self._shutdown()

    def health(self) -> str | None:
        """None while the consumer can work; else why not (its task died, or it waits out a
        database outage). A ``/health`` check."""
        if self.failed is not None:
            return f"stopped: {self.failed}"
        return self.database.describe()

    async def _start_consuming(self, channel: AbstractChannel) -> None:
        self._channel = channel
        await channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await declare_consumer_queue(
            channel, self.service, self.routing_keys, delivery_limit=self.queue_delivery_limit
        )
        self._consumer_tag = await self._queue.consume(self._on_message)
        self.consuming.set()
        log.info("consumer.started", service=self.service, routing_keys=self.routing_keys)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, let in-flight handlers finish (cancelled after ``timeout``; their
        messages are then redelivered), close the channel."""
        self._stop_timeout = timeout
        self._stopping.set()
        await self._shutdown()

    async def _wait_for_channel(self) -> AbstractChannel | None:
        waiting = False
        while not self._stopping.is_set() and not self._shut_down:
            try:
                return await self.broker.channel()
            except BrokerUnavailable:
                if not waiting:
                    log.info("consumer.waiting_for_broker", service=self.service)
                    waiting = True
                # The sleep bounds the loop should the broker never have been started.
                await _first_of(
                    self.broker.wait_up(),
                    self._stopping.wait(),
                    asyncio.sleep(self.broker.reconnect_interval),
                )
        return None

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping.is_set():
            return  # arrived as we stop: left unacked, the broker gives it back when the channel closes
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._process(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        routing_key = message.routing_key or ""
        message_id = message.message_id or ""
        headers = dict(message.headers or {})
        correlation_id = message.correlation_id or message_id
        with structlog.contextvars.bound_contextvars(
            message_id=message_id,
            routing_key=routing_key,
            correlation_id=correlation_id,
            request_id=headers.get(REQUEST_ID_HEADER),
        ):
            try:
                self._check_publisher(routing_key, message.user_id)
                handler, event = self._decode(message_id, routing_key, message.body)
            except Poison as poison:
                MESSAGES_REJECTED.labels(self.service, poison.reason).inc()
                log.error(
                    "message.rejected", service=self.service, reason=poison.reason, detail=poison.detail
                )
                await _settle(message.reject(requeue=False))
                return
            context = MessageContext(
                message_id=message_id,
                routing_key=routing_key,
                correlation_id=correlation_id,
                causation_id=_text(headers.get(CAUSATION_HEADER)),
                headers=headers,
                redelivered=bool(message.redelivered),
            )
            started = time.perf_counter()
            while True:
                if not await self._database_open():
                    return  # stopping: left unacked, the broker gives it back when the channel closes
                try:
                    applied = await self._apply(handler, event, context)
                except Exception as exc:  # noqa: BLE001 - classified: an outage waits, a failure counts
                    if is_outage(exc):
                        MESSAGES_HELD_FOR_OUTAGE.labels(self.service).inc()
                        self.database.close(f"{type(exc).__name__}: {exc}")
                        continue
                    await self._failed(message, message_id, routing_key)
                    return
                break
            self._failures.pop(message_id, None)
            if applied:
                MESSAGES_CONSUMED.labels(self.service, routing_key).inc()
                log.debug("message.handled", seconds=round(time.perf_counter() - started, 4))
            else:
                MESSAGES_DUPLICATE.labels(self.service, routing_key).inc()
                log.info("message.duplicate_skipped")
            await _settle(message.ack())

    async def _database_open(self) -> bool:
        """Wait while the database is away; False if the consumer stops meanwhile."""
        if self.database.is_open:
            return True
        await _first_of(self.database.wait_open(), self._stopping.wait())
        return self.database.is_open and not self._stopping.is_set()

    async def _failed(self, message: AbstractIncomingMessage, message_id: str, routing_key: str) -> None:
        """The handler itself failed: retry after a pause, or dead-letter past the limit."""
        failures = self._failures.pop(message_id, 0) + 1
        if failures > self.delivery_limit:
            MESSAGES_DEAD_LETTERED.labels(self.service, routing_key).inc()
            log.error("message.dead_lettered", service=self.service, attempts=failures, exc_info=True)
            await _settle(message.reject(requeue=False))
            return
        self._failures[message_id] = failures
        while len(self._failures) > MAX_TRACKED_FAILURES:
            self._failures.popitem(last=False)
        MESSAGES_RETRIED.labels(self.service, routing_key).inc()
        log.warning("message.handler_failed", service=self.service, attempt=failures, exc_info=True)
        await asyncio.sleep(min(self.retry_delay * 2 ** (failures - 1), MAX_RETRY_DELAY))
        await _settle(message.nack(requeue=True))

    def _check_publisher(self, routing_key: str, user_id: str | None) -> None:
        """Only the owning context may say what its contracts say (``lf_messaging.identity``);
        the broker has verified ``user_id`` against the login."""
        publisher = context_of_user(user_id)
        if publisher is None:
            if not self.accept_unidentified:
                raise Poison("unidentified_publisher", {"user_id": user_id})
        elif publisher != owning_context(routing_key):
            raise Poison("wrong_publisher", {"user_id": user_id, "owner": owning_context(routing_key)})

    def _decode(self, message_id: str, routing_key: str, body: bytes) -> tuple[Handler, IntegrationEvent]:
        if not message_id:
            raise Poison("no_message_id")
        route = self.routes.get(routing_key)
        if route is None:
            raise Poison("unknown_routing_key")
        model, handler = route
        try:
            # Non-JSON is a ValidationError too. Unknown fields are ignored by the contract models.
            return handler, model.model_validate_json(body)
        except ValidationError as exc:
            raise Poison("invalid_payload", exc.errors(include_url=False, include_input=False)) from exc

    async def _apply(self, handler: Handler, event: IntegrationEvent, context: MessageContext) -> bool:
        """Record the message id and run the handler in one transaction; False for a duplicate."""
        with appends_noted() as note:
            async with self._connection() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO inbox (message_id, routing_key) VALUES ($1, $2)"
                    " ON CONFLICT (message_id) DO NOTHING RETURNING true",
                    context.message_id,
                    context.routing_key,
                )
                if not fresh:
                    return False
                await handler(conn, event, context)
        if note.appended and self.appended is not None:  # committed: readers may see it now
            self.appended()
        return True

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        # A pool that cannot hand out a connection in time is an outage (all connections stuck, or
        # the server refusing new ones), not this message's failure.
        try:
            conn = await self.pool.acquire(timeout=self.acquire_timeout)
        except (TimeoutError, OSError) as exc:
            raise DatabaseUnavailable(f"no database connection: {exc!r}") from exc
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def _shutdown(self) -> None:
        async with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
            self._stopping.set()
            self.consuming.clear()
            if self._queue is not None and self._consumer_tag is not None:
                with contextlib.suppress(Exception):
                    await self._queue.cancel(self._consumer_tag)
            await self._drain(self._stop_timeout)
            await self.database.stop()
            if self._channel is not None and not self._channel.is_closed:
                with contextlib.suppress(Exception):
                    await self._channel.close()
            log.info("consumer.stopped", service=self.service)

    async def _drain(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self._in_flight:
            remaining = deadline - asyncio.get_running_loop().time()
            pending = set(self._in_flight)
            if remaining <= 0:
                log.warning("consumer.cancelling_handlers", service=self.service, count=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                return
            await asyncio.wait(pending, timeout=remaining)


async def _settle(outcome: Awaitable[None]) -> None:
    """Ack, nack or reject; if the channel is gone the broker redelivers, and the inbox or the
    handler's retry takes care of it."""
    try:
        await outcome
    except Exception:
        log.warning("message.settle_failed", exc_info=True)


async def _first_of(*awaitables: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
