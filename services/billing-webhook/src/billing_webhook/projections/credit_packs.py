"""The catalogue: what a checkout can sell, and how many credits an order of each variant grants."""

from __future__ import annotations

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def put(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "INSERT INTO credit_packs (variant_id, product_id, name, price_cents, credits_granted, test_mode,"
        " active, defined_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
        " ON CONFLICT (variant_id) DO UPDATE SET product_id = $2, name = $3, price_cents = $4,"
        " credits_granted = $5, test_mode = $6, active = $7, updated_at = $8",
        d["variant_id"],
        d["product_id"],
        d["name"],
        d["price_cents"],
        d["credits_granted"],
        d["test_mode"],
        d["active"],
        event.recorded_at,
    )


PROJECTION = Projection(
    name="credit_packs",
    tables=("credit_packs",),
    handlers={"CreditPackDefined": put, "CreditPackChanged": put},
)
