"""execution-proxy's model prices, kept as the read model behind GET /wallet/pricing."""

from __future__ import annotations

import asyncpg

from lf_contracts.events import ModelPriceChangedV1
from lf_projections.upsert import upsert_if_newer


async def price_changed(conn: asyncpg.Connection, event: ModelPriceChangedV1) -> None:
    row = {
        "key": event.key,
        "name": event.name,
        "provider": event.provider,
        "unit_type": event.unit_type,
        "sample_cost_usd": event.sample_cost_usd,
        "sample_cost_credits": event.sample_cost_credits,
        "active": event.active,
        "updated_at": event.occurred_at,
    }
    await upsert_if_newer(conn, "model_prices", row, key="key")
