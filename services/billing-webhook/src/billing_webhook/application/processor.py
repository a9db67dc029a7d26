"""The delivery processor: a log follower that turns each recorded delivery into its effects.

Run by ``FollowerRunner`` (one active replica, woken on append) over ``DeliveryReceived`` and
``DeliveryReplayRequested``, with its batch outside the checkpoint's transaction
(``lf_projections.catch_up_outside``):

- The batch is split by ordering key (``payloads.ordering_key``: the order, or the subscription).
  Partitions run at the same time, at most ``concurrency`` of them, each on its own pool connection;
  one partition's deliveries run one after another in log order, so an order's refund is never
  processed before its creation.
- Each delivery is one short transaction of its own (``Deliveries.process``): lock the delivery's
  stream and load it, return if it is no longer pending, run the handler of its event (``handlers``,
  routed in the composition root) on that connection, append ``DeliveryProcessed``. The handler's
  commands run in that same transaction without savepoints, so its effects and the mark commit
  together or not at all.
- The checkpoint moves only once every partition has finished. Exactly-once rests on the claim, not
  on the checkpoint: a batch that stops half-way (a crash, a lost connection) is run again whole,
  and every delivery that committed is found processed and skipped.

A delivery whose handler raises is rolled back and marked ``DeliveryFailed`` instead (in a
transaction of its own), so one poison delivery never holds up the others; it is processed again
when replayed. A statement timeout (``QueryCanceledError``) is that delivery's own failure too, so one
slow or blocked delivery never makes its batch retry forever. A lost database connection, a deadlock
or a lost race to create a stream is not the delivery's fault: its partition stops there (the key's
later deliveries must not overtake it), the others finish, and the batch is retried: never marked
failed, never applied twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog

from billing_webhook.adapters.lemonsqueezy.payloads import metric_label, ordering_key, parse
from billing_webhook.application.billing import Billing
from billing_webhook.application.deliveries import REPOSITORY as DELIVERIES
from billing_webhook.domain.delivery import Delivery
from billing_webhook.domain.outcome import Outcome
from billing_webhook.handlers import Handler, recorded_only
from billing_webhook.metrics import DELIVERIES_FAILED, DELIVERIES_PROCESSED
from lf_eventstore import ConcurrencyError, RecordedEvent
from lf_projections import catch_up_outside

log = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 4
"""Partitions processed at once: enough to overlap each delivery's round trips with the others',
few enough to leave the pool's connections and the event loop to the webhook's requests."""

# Failures of the infrastructure, not of the delivery: retry the batch rather than mark it failed.
TRANSIENT = (
    OSError,
    ConcurrencyError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)


class DeliveryProcessor:
    name = "delivery_processor"  # keys its checkpoint and lease, unique within the schema
    types = ["DeliveryReceived", "DeliveryReplayRequested"]
    catch_up_once = catch_up_outside

    def __init__(
        self, billing: Billing, *, handlers: Mapping[str, Handler], concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        self.billing = billing
        self.handlers = handlers
        self.concurrency = max(1, concurrency)

    async def handle_batch_on_pool(self, pool: asyncpg.Pool, events: list[RecordedEvent]) -> None:
        partitions = await self.partitions(pool, events)
        slots = asyncio.Semaphore(self.concurrency)

        async def run(partition: list[RecordedEvent]) -> None:
            async with slots:
                for event in partition:  # stops at a transient failure: later ones must wait
                    await self.process(event)

        results = await asyncio.gather(*(run(p) for p in partitions), return_exceptions=True)
        # Every partition has finished (committed, or stopped at a transient failure) before the
        # batch is retried: none is left running beside its own retry.
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def partitions(self, pool: asyncpg.Pool, events: list[RecordedEvent]) -> list[list[RecordedEvent]]:
        """The batch's events by ordering key, each key's in log order."""
        replayed = [e.data["delivery_key"] for e in events if e.type != "DeliveryReceived"]
        payloads = await _payloads(pool, replayed) if replayed else {}
        by_key: dict[str, list[RecordedEvent]] = {}
        for event in events:
            payload = event.data.get("payload") or payloads.get(event.data["delivery_key"], {})
            by_key.setdefault(ordering_key(payload), []).append(event)
        return list(by_key.values())

    async def process(self, cause: RecordedEvent) -> None:
        key = cause.data["delivery_key"]
        metadata = _metadata(cause)

        async def work(conn: asyncpg.Connection, delivery: Delivery) -> Outcome:
            handler = self.handlers.get(delivery.event_name, recorded_only)
            document = parse(delivery.payload)  # validated at receipt: parses again
            bound = self.billing.on(conn, savepoints=False)  # the delivery's transaction is the unit
            return await handler(conn, document, billing=bound, metadata=metadata)

        with structlog.contextvars.bound_contextvars(delivery_id=key):
            try:
                processed = await self.billing.deliveries.process(key, work, metadata=metadata)
            except asyncpg.QueryCanceledError as exc:  # an OperatorInterventionError, but its own
                await self._fail(key, exc, metadata)
                return
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - the delivery's own failure, logged in _fail
                await self._fail(key, exc, metadata)
                return
        if processed is None:  # processed by an earlier run of this batch, or failed and not replayed
            return
        DELIVERIES_PROCESSED.labels(metric_label(processed.event_name), processed.outcome.kind).inc()
        log.info(
            "delivery.processed",
            event_name=processed.event_name,
            outcome=processed.outcome.kind,
            detail=processed.outcome.detail,
        )

    async def _fail(self, key: str, exc: Exception, metadata: dict[str, Any]) -> None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        event_name = await self.billing.deliveries.fail(key, error, metadata=metadata)
        DELIVERIES_FAILED.labels(metric_label(event_name)).inc()
        log.warning("delivery.failed", event_name=event_name, error=error, exc_info=True)


async def _payloads(pool: asyncpg.Pool, keys: list[str]) -> dict[str, Any]:
    """The documents of replayed deliveries (a replay request names only its delivery), from the
    ``DeliveryReceived`` that starts each delivery's stream."""
    rows = await pool.fetch(
        "SELECT data->>'delivery_key' AS key, data->'payload' AS payload FROM events"
        " WHERE stream_id = ANY($1::text[]) AND version = 1",
        [DELIVERIES.stream_id(key) for key in keys],
    )
    return {row["key"]: row["payload"] for row in rows}


def _metadata(cause: RecordedEvent) -> dict[str, Any]:
    """What the delivery causes is correlated with the request that delivered it."""
    metadata = {
        "correlationId": cause.metadata.get("correlationId") or str(cause.event_id),
        "causationId": str(cause.event_id),
        "actor": "billing:deliveries",
    }
    if cause.metadata.get("requestId"):
        metadata["requestId"] = cause.metadata["requestId"]
    return metadata
