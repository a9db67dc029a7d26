"""billing-webhook's credit packs, kept as the read model behind GET /wallet/products."""

from __future__ import annotations

import asyncpg

from lf_contracts.events import CreditPackChangedV1
from lf_projections.upsert import upsert_if_newer


async def pack_changed(conn: asyncpg.Connection, event: CreditPackChangedV1) -> None:
    row = {
        "variant_id": event.variant_id,
        "product_id": event.product_id,
        "name": event.name,
        "price_cents": event.price_cents,
        "credits_granted": event.credits_granted,
        "test_mode": event.test_mode,
        "active": event.active,
        "updated_at": event.occurred_at,
    }
    await upsert_if_newer(conn, "credit_packs", row, key="variant_id")
