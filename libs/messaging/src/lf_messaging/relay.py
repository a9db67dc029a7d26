"""The outbox relay: the service's own event log is the outbox (DESIGN §5).

The relay is a log ``Follower`` like any async projection, run by ``FollowerRunner`` (one active
replica, wakes on append), but it brings its own ``catch_up_once``: a follower that waits on
RabbitMQ must not do so inside a transaction. PostgreSQL's read horizon is shared by the whole
server, so a transaction held open while a broker hangs would keep every follower of every service
from seeing new commits. Per batch the relay therefore

1. reads its checkpoint and the next events (autocommit statements, no transaction left open),
2. publishes every event that belongs to the public contract and waits for every publisher
   confirm, holding no database connection at all,
3. moves the checkpoint in one short statement, a compare-and-set on the checkpoint it read: an
   overlapping runner that got further meanwhile is never moved backwards.

Any failure (broker down, a refused or unconfirmed publish, a payload that does not validate)
raises before step 3, the checkpoint stays, and the batch is retried. A crash after the broker
confirmed but before step 3 publishes those events again: delivery is at least once, and consumers
dedupe on ``message_id`` (the event id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import structlog
from aio_pika.abc import AbstractRobustChannel
from prometheus_client import Counter

from lf_contracts.events import IntegrationEvent
from lf_eventstore import Checkpoint, RecordedEvent, read_after
from lf_messaging.connection import Broker, BrokerUnavailable
from lf_messaging.publisher import REQUEST_ID_HEADER, publish
from lf_messaging.topology import declare_exchanges
from lf_pg import WITHOUT_FLUSH
from lf_projections.follower import EVENTS_FOLLOWED, FOLLOWER_LAG

log = structlog.get_logger(__name__)

MESSAGES_PUBLISHED = Counter(
    "messages_published_total", "Integration events published and confirmed by the broker", ["routing_key"]
)
RELAY_FAILURES = Counter("relay_failures_total", "Relay batches that failed and will be retried", ["relay"])

ToMessage = Callable[[RecordedEvent], IntegrationEvent | None]


class Relay:
    """Publishes the log's public events; a ``Follower`` (``name``, ``types``, ``handle_batch``).

    ``to_message`` maps a domain event to its contract event, or ``None`` for a private one;
    ``types`` lists the domain event types worth reading at all.
    """

    def __init__(
        self,
        broker: Broker,
        to_message: ToMessage,
        types: list[str],
        *,
        name: str = "relay",
        confirm_timeout: float = 10.0,
    ) -> None:
        self.broker = broker
        self.to_message = to_message
        self.types = list(types)
        self.name = name
        self.confirm_timeout = confirm_timeout
        self._channel: AbstractRobustChannel | None = None

    async def catch_up_once(self, pool: asyncpg.Pool, *, batch_size: int = 500) -> int:
        """Publish one batch and then move the checkpoint; returns how many events it passed (0
        when caught up). No transaction is open while the broker is waited on."""
        async with pool.acquire() as conn:
            after = await self._checkpoint(conn)
            # Every type is read and filtered here, so the checkpoint passes the private events too.
            events = await read_after(conn, after, limit=batch_size)
        if not events:
            return 0
        wanted = set(self.types)
        relevant = [event for event in events if event.type in wanted]
        if relevant:
            await self.handle_batch(None, relevant)
        last = events[-1]
        async with pool.acquire() as conn:
            # Without waiting for the WAL flush: a checkpoint a server crash loses only publishes
            # its batch again, and consumers' inboxes drop the copies (message id = event id).
            moved = await conn.fetchval(
                "UPDATE follower_checkpoints SET transaction_id = $4, position = $5, updated_at = now()"
                f" WHERE name = $1 AND transaction_id = $2 AND position = $3 RETURNING {WITHOUT_FLUSH}",
                self.name,
                after.transaction_id,
                after.position,
                last.transaction_id,
                last.position,
            )
        if moved is None:  # another runner overlapped and got further: its checkpoint stands
            log.info("relay.checkpoint_moved_meanwhile", relay=self.name)
        EVENTS_FOLLOWED.labels(self.name).inc(len(events))
        FOLLOWER_LAG.labels(self.name).set(max(0.0, time.time() - last.recorded_at.timestamp()))
        return len(events)

    async def _checkpoint(self, conn: asyncpg.Connection) -> Checkpoint:
        await conn.execute(
            "INSERT INTO follower_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", self.name
        )
        row = await conn.fetchrow(
            "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1", self.name
        )
        return Checkpoint(row["transaction_id"], row["position"])

    async def handle_batch(self, conn: asyncpg.Connection | None, events: list[RecordedEvent]) -> None:
        """Publish ``events`` and wait for their confirms (``conn`` is not used: nothing waits on
        the broker inside a transaction)."""
        try:
            await self._publish_all(events)
        except Exception:
            RELAY_FAILURES.labels(self.name).inc()
            raise

    async def _publish_all(self, events: list[RecordedEvent]) -> None:
        outgoing = [(event, message) for event in events if (message := self.to_message(event)) is not None]
        if not outgoing:
            return
        channel = await self._open_channel()
        async with asyncio.timeout(self.confirm_timeout):
            # Just after a reconnection the channel may still be restoring.
            await channel.ready()
            # Published back to back and confirmed together: one round trip for the batch, not
            # one per message. Consumers must still tolerate reordering and repeats.
            await asyncio.gather(*(self._publish(channel, event, message) for event, message in outgoing))
        for _, message in outgoing:
            MESSAGES_PUBLISHED.labels(message.routing_key).inc()
        log.debug("relay.published", relay=self.name, count=len(outgoing))

    async def _publish(
        self, channel: AbstractRobustChannel, event: RecordedEvent, message: IntegrationEvent
    ) -> None:
        metadata = event.metadata or {}
        event_id = str(event.event_id)
        headers = {REQUEST_ID_HEADER: metadata["requestId"]} if metadata.get("requestId") else None
        await publish(
            channel,
            message,
            message_id=event_id,
            correlation_id=str(metadata.get("correlationId") or event_id),
            causation_id=str(metadata.get("causationId") or event_id),
            headers=headers,
            timestamp=event.recorded_at,
            user_id=self.broker.user,
        )

    async def _open_channel(self) -> AbstractRobustChannel:
        """The relay's channel, reopened after a channel error; a lost connection raises at once
        rather than waiting for the robust connection to come back."""
        if not self.broker.is_up():
            raise BrokerUnavailable("RabbitMQ is not connected: the batch will be retried")
        if self._channel is None or self._channel.is_closed:
            channel = await self.broker.channel()
            await declare_exchanges(channel)
            self._channel = channel
        return self._channel

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            await channel.close()
