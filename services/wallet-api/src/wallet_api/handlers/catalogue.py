"""billing-webhook's credit packs, kept as the read model behind GET /wallet/products."""

from __future__ import annotations

import asyncpg

from lf_contracts.events import CreditPackChangedV1
from lf_messaging import MessageContext
from wallet_api.application.commands import Wallets


async def on_credit_pack_changed(
    conn: asyncpg.Connection, event: CreditPackChangedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    # Messages may arrive out of order: only a newer state of the pack replaces the one we have.
    await conn.execute(
        "INSERT INTO credit_packs (variant_id, product_id, name, price_cents, credits_granted, test_mode,"
        " active, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (variant_id) DO UPDATE SET product_id = $2, name = $3, price_cents = $4,"
        " credits_granted = $5, test_mode = $6, active = $7, updated_at = $8"
        " WHERE credit_packs.updated_at < $8",
        event.variant_id,
        event.product_id,
        event.name,
        event.price_cents,
        event.credits_granted,
        event.test_mode,
        event.active,
        event.occurred_at,
    )
