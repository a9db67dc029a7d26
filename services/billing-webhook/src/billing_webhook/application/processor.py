"""The delivery processor: a log follower that turns each recorded delivery into its effects.

Run by ``FollowerRunner`` (one active replica, woken on append) over ``DeliveryReceived`` and
``DeliveryReplayRequested``. Each delivery is three plain steps in one savepoint of the batch
transaction: claim it (its stream locked), run the handler of its event (``handlers``, routed in the
composition root), mark it processed. The handler's commands and the ``DeliveryProcessed`` mark
commit together with the follower's checkpoint, so each delivery takes effect exactly once. A
delivery whose handler raises is rolled back to its savepoint and marked ``DeliveryFailed`` instead,
so one poison delivery never holds up the others; it is processed again when replayed. A lost
database connection is not the delivery's fault: the whole batch rolls back and is retried. A
statement timeout (``QueryCanceledError``) is: it is that delivery's own failure (its savepoint
rolls back, the connection stays usable), marked failed like any other, so one slow or blocked
delivery never makes its whole batch retry forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog

from billing_webhook.adapters.lemonsqueezy.payloads import metric_label, parse
from billing_webhook.application.billing import Billing
from billing_webhook.handlers import Handler, recorded_only
from billing_webhook.metrics import DELIVERIES_FAILED, DELIVERIES_PROCESSED
from lf_eventstore import RecordedEvent

log = structlog.get_logger(__name__)

# Failures of the infrastructure, not of the delivery: retry the batch rather than mark it failed.
TRANSIENT = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)


class DeliveryProcessor:
    # Checkpoints are keyed by follower name within the service's schema; this one reads well in
    # logs and metrics.
    name = "billing-webhook.deliveries"
    types = ["DeliveryReceived", "DeliveryReplayRequested"]

    def __init__(self, billing: Billing, *, handlers: Mapping[str, Handler]) -> None:
        self.billing = billing
        self.handlers = handlers

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for event in events:
            await self._process(conn, event)

    async def _process(self, conn: asyncpg.Connection, cause: RecordedEvent) -> None:
        key = cause.data["delivery_key"]
        billing = self.billing.on(conn)
        metadata = _metadata(cause)
        with structlog.contextvars.bound_contextvars(delivery_id=key):
            try:
                async with conn.transaction():
                    delivery = await billing.deliveries.claim(conn, key)
                    if delivery is None:
                        return
                    handler = self.handlers.get(delivery.event_name, recorded_only)
                    document = parse(delivery.payload)  # validated at receipt: parses again
                    outcome = await handler(conn, document, billing=billing, metadata=metadata)
                    await billing.deliveries.mark_processed(conn, delivery, outcome, metadata=metadata)
            except asyncpg.QueryCanceledError as exc:  # an OperatorInterventionError, but its own
                await self._fail(billing, key, exc, metadata)
                return
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - the delivery's own failure, logged in _fail
                await self._fail(billing, key, exc, metadata)
                return
        DELIVERIES_PROCESSED.labels(metric_label(delivery.event_name), outcome.kind).inc()
        log.info(
            "delivery.processed", event_name=delivery.event_name, outcome=outcome.kind, detail=outcome.detail
        )

    async def _fail(self, billing: Billing, key: str, exc: Exception, metadata: dict[str, Any]) -> None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        event_name = await billing.deliveries.fail(key, error, metadata=metadata)
        DELIVERIES_FAILED.labels(metric_label(event_name)).inc()
        log.warning("delivery.failed", event_name=event_name, error=error, exc_info=True)


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
