"""Every delivery and where its processing stands: what ``deliveries list`` shows."""

from __future__ import annotations

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def received(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    data = d["payload"].get("data") or {}
    await conn.execute(
        "INSERT INTO deliveries (delivery_id, event_name, resource_type, resource_id, test_mode, status,"
        " received_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        d["delivery_key"],
        d["event_name"],
        data.get("type"),
        str(data.get("id")),
        bool(d["payload"]["meta"].get("test_mode", False)),
        event.recorded_at,
    )


async def processed(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'processed', outcome = $2, detail = $3, attempts = attempts + 1,"
        " updated_at = $4 WHERE delivery_id = $1",
        event.data["delivery_key"],
        event.data["outcome"],
        event.data["detail"],
        event.recorded_at,
    )


async def failed(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'failed', outcome = NULL, detail = $2, attempts = attempts + 1,"
        " updated_at = $3 WHERE delivery_id = $1",
        event.data["delivery_key"],
        event.data["error"],
        event.recorded_at,
    )


async def replay_requested(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'pending', updated_at = $2 WHERE delivery_id = $1",
        event.data["delivery_key"],
        event.recorded_at,
    )


PROJECTION = Projection(
    name="deliveries",
    tables=("deliveries",),
    handlers={
        "DeliveryReceived": received,
        "DeliveryProcessed": processed,
        "DeliveryFailed": failed,
        "DeliveryReplayRequested": replay_requested,
    },
)
