"""Every reservation and its outcome: retries find theirs by reference id, expiry finds the due."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def reserved(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    expires_at = datetime.fromisoformat(d["expires_at"])
    # Recorded before reservations had a hard deadline: the deadline is the expiry (as the aggregate).
    deadline = datetime.fromisoformat(d["max_expires_at"]) if d.get("max_expires_at") else expires_at
    await conn.execute(
        "INSERT INTO reservations (reservation_id, lenser_id, reference_id, amount, status, expires_at,"
        " max_expires_at, created_at) VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7)",
        d["reservation_id"],
        d["lenser_id"],
        d["reference_id"],
        d["amount"],
        expires_at,
        deadline,
        event.recorded_at,
    )


async def extended(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE reservations SET expires_at = $2 WHERE reservation_id = $1",
        event.data["reservation_id"],
        datetime.fromisoformat(event.data["expires_at"]),
    )


async def captured(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE reservations SET status = 'captured', captured = $2, overrun = $3, closed_at = $4"
        " WHERE reservation_id = $1",
        event.data["reservation_id"],
        event.data["captured"],
        event.data["overrun"],
        event.recorded_at,
    )


async def charged_after_expiry(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE reservations SET status = 'captured', captured = $2, overrun = $3, uncollected = $4,"
        " closed_at = $5 WHERE reservation_id = $1",
        event.data["reservation_id"],
        event.data["charged"],
        event.data["overrun"],
        event.data["uncollected"],
        event.recorded_at,
    )


async def released(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    status = "expired" if event.data["reason"] == "expired" else "released"
    await conn.execute(
        "UPDATE reservations SET status = $2, closed_at = $3 WHERE reservation_id = $1",
        event.data["reservation_id"],
        status,
        event.recorded_at,
    )


PROJECTION = Projection(
    name="reservations",
    tables=("reservations",),
    handlers={
        "CreditsReserved": reserved,
        "ReservationExtended": extended,
        "ReservationCaptured": captured,
        "ExpiredReservationCharged": charged_after_expiry,
        "ReservationReleased": released,
    },
)
