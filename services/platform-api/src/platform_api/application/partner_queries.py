"""Reads of the partner provisioning records (read model ``partner_provisions``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg


async def provisioning(pool: asyncpg.Pool, lenser: UUID, partner: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT account_id, email, display_name, starter_credits, tokens, provisioned_at,"
        " tokens_refreshed_at, claims_sent FROM partner_provisions WHERE lenser_id = $1 AND partner = $2",
        lenser,
        partner,
    )
