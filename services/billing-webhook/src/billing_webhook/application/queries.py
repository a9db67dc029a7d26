"""Reads, straight from the read models (and, for one delivery's history, from its stream)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from lf_eventstore import load_stream

PACK_COLUMNS = "variant_id, product_id, name, price_cents, credits_granted, test_mode, active"


@dataclass(frozen=True, slots=True)
class Pack:
    variant_id: str
    product_id: str
    name: str
    price_cents: int
    credits_granted: int
    test_mode: bool
    active: bool

    def view(self) -> dict[str, Any]:
        return {
            "variantId": self.variant_id,
            "productId": self.product_id,
            "name": self.name,
            "priceCents": self.price_cents,
            "creditsGranted": self.credits_granted,
            "testMode": self.test_mode,
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class Session:
    session_id: UUID
    lenser_id: UUID
    variant_id: str
    status: str


async def credit_pack(conn: asyncpg.Connection | asyncpg.Pool, variant_id: str) -> Pack | None:
    row = await conn.fetchrow(f"SELECT {PACK_COLUMNS} FROM credit_packs WHERE variant_id = $1", variant_id)
    return Pack(**dict(row)) if row else None


async def credit_packs(pool: asyncpg.Pool) -> list[Pack]:
    rows = await pool.fetch(f"SELECT {PACK_COLUMNS} FROM credit_packs ORDER BY price_cents, variant_id")
    return [Pack(**dict(r)) for r in rows]


async def session(conn: asyncpg.Connection | asyncpg.Pool, session_id: UUID) -> Session | None:
    row = await conn.fetchrow(
        "SELECT session_id, lenser_id, variant_id, status FROM checkout_sessions WHERE session_id = $1",
        session_id,
    )
    return Session(**dict(row)) if row else None


async def session_and_pack(
    conn: asyncpg.Connection, session_id: UUID | None, variant_id: str
) -> tuple[Session | None, Pack | None]:
    """``session`` and ``credit_pack`` in one round trip (what a paid order needs)."""
    pack_columns = ", ".join(f"p.{c.strip()} AS pack_{c.strip()}" for c in PACK_COLUMNS.split(","))
    row = await conn.fetchrow(
        "SELECT s.session_id, s.lenser_id, s.variant_id, s.status, " + pack_columns + " FROM (SELECT) AS one"
        " LEFT JOIN checkout_sessions s ON s.session_id = $1"
        " LEFT JOIN credit_packs p ON p.variant_id = $2",
        session_id,
        variant_id,
    )
    session = (
        Session(row["session_id"], row["lenser_id"], row["variant_id"], row["status"])
        if row["session_id"] is not None
        else None
    )
    pack_fields = [c.strip() for c in PACK_COLUMNS.split(",")]
    pack = Pack(*(row[f"pack_{c}"] for c in pack_fields)) if row["pack_variant_id"] is not None else None
    return session, pack


DELIVERY_COLUMNS = (
    "delivery_id, event_name, resource_type, resource_id, test_mode, status, outcome, detail, attempts,"
    " received_at, updated_at"
)


async def deliveries(conn: asyncpg.Connection, *, limit: int, failed_only: bool) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE NOT $2 OR status = 'failed'"
        " ORDER BY received_at DESC, delivery_id LIMIT $1",
        limit,
        failed_only,
    )
    return [dict(r) for r in rows]


async def delivery_ids(conn: asyncpg.Connection, prefix: str) -> list[str]:
    """The ids starting with ``prefix`` (operators copy a few characters of a long id)."""
    rows = await conn.fetch(
        "SELECT delivery_id FROM deliveries WHERE delivery_id LIKE $1 || '%' ORDER BY delivery_id LIMIT 2",
        prefix.lower().replace("%", "").replace("_", ""),
    )
    return [r["delivery_id"] for r in rows]


async def delivery(conn: asyncpg.Connection, delivery_id: str) -> dict[str, Any] | None:
    """The delivery's row, its payload and its processing history (the events of its stream)."""
    row = await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = $1", delivery_id
    )
    state = await load_stream(conn, f"delivery-{delivery_id}")
    if row is None or state is None:
        return None
    history = [
        {
            "version": e.version,
            "type": e.type,
            "recordedAt": e.recorded_at,
            **{k: v for k, v in e.data.items() if k not in ("payload", "delivery_key")},
        }
        for e in state.events
    ]
    personal = await conn.fetchval(
        "SELECT data FROM delivery_personal_data WHERE delivery_id = $1", delivery_id
    )  # None once the retention is over
    return {
        **dict(row),
        "payload": state.events[0].data["payload"],
        "personalData": personal,
        "history": history,
    }


async def sessions_due(conn: asyncpg.Connection, at: datetime, *, limit: int) -> list[UUID]:
    """Checkout sessions whose time is up at ``at`` and that no order completed (at most ``limit``)."""
    rows = await conn.fetch(
        "SELECT session_id FROM checkout_sessions WHERE status = 'created' AND expires_at <= $1 LIMIT $2",
        at,
        limit,
    )
    return [row["session_id"] for row in rows]


async def catalogue_is_empty(conn: asyncpg.Connection) -> bool:
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM credit_packs)")
