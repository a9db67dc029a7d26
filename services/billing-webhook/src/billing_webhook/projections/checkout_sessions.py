"""Checkout sessions: deliveries find their lenser here, and the expiry job the sessions due."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def created(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "INSERT INTO checkout_sessions (session_id, lenser_id, variant_id, checkout_id, checkout_url,"
        " test_mode, status, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'created', $7, $8)",
        d["session_id"],
        d["lenser_id"],
        d["variant_id"],
        d["checkout_id"],
        d["checkout_url"],
        d["test_mode"],
        datetime.fromisoformat(d["expires_at"]),
        event.recorded_at,
    )


async def completed(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE checkout_sessions SET status = 'completed', order_id = $2, closed_at = $3"
        " WHERE session_id = $1",
        event.data["session_id"],
        event.data["order_id"],
        event.recorded_at,
    )


async def expired(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE checkout_sessions SET status = 'expired', closed_at = $2 WHERE session_id = $1",
        event.data["session_id"],
        event.recorded_at,
    )


PROJECTION = Projection(
    name="checkout_sessions",
    tables=("checkout_sessions",),
    handlers={
        "CheckoutSessionCreated": created,
        "CheckoutSessionCompleted": completed,
        "CheckoutSessionExpired": expired,
    },
)
