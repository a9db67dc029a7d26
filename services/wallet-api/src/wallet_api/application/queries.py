"""Reads, straight from the read models: never from the log. What a command reads besides its
wallet is named in ``facts`` and read in the command's own read, after its wallet is locked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from wallet_api.domain import errors
from wallet_api.projections.ledger import UNCOLLECTED_PREFIX


async def balance(pool: asyncpg.Pool, lenser_id: UUID) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT balance, reserved, lifetime_deposits, lifetime_spent, frozen, daily_limit, monthly_limit"
        " FROM balances WHERE lenser_id = $1",
        lenser_id,
    )
    if row is None:
        raise errors.WalletNotFound()
    return {
        "balance": row["balance"],
        "availableBalance": row["balance"] - row["reserved"],
        "reserved": row["reserved"],
        "lifetimeDeposits": row["lifetime_deposits"],
        "lifetimeSpent": row["lifetime_spent"],
        "frozen": row["frozen"],
        "limits": {"daily": row["daily_limit"], "monthly": row["monthly_limit"]},
    }


async def transactions(
    pool: asyncpg.Pool, lenser_id: UUID, *, limit: int, offset: int
) -> tuple[list[dict], int]:
    """A page of the lenser's transactions, newest first, and the total count."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT true FROM balances WHERE lenser_id = $1", lenser_id):
            raise errors.WalletNotFound()
        total = await conn.fetchval("SELECT count(*) FROM transactions WHERE lenser_id = $1", lenser_id)
        rows = await conn.fetch(
            "SELECT id, tx_type, amount, direction, balance_after, description, reference_type, reference_id,"
            " created_at FROM transactions WHERE lenser_id = $1 ORDER BY position DESC LIMIT $2 OFFSET $3",
            lenser_id,
            limit,
            offset,
        )
    return [
        {
            "id": r["id"],
            "txType": r["tx_type"],
            "amount": r["amount"],
            "direction": r["direction"],
            "balanceAfter": r["balance_after"],
            "description": r["description"],
            "referenceType": r["reference_type"],
            "referenceId": r["reference_id"],
            "createdAt": r["created_at"],
        }
        for r in rows
    ], total


async def pricing(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT key, name, provider, unit_type, sample_cost_usd, sample_cost_credits FROM model_prices"
        " WHERE active ORDER BY provider, key"
    )
    return [
        {
            "key": r["key"],
            "name": r["name"],
            "provider": r["provider"],
            "unitType": r["unit_type"],
            "sampleCostUsd": r["sample_cost_usd"],
            "sampleCostCredits": r["sample_cost_credits"],
        }
        for r in rows
    ]


async def products(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT variant_id, product_id, name, price_cents, credits_granted, test_mode FROM credit_packs"
        " WHERE active ORDER BY price_cents, variant_id"
    )
    return [
        {
            "id": r["product_id"],
            "variantId": r["variant_id"],
            "name": r["name"],
            "priceCents": r["price_cents"],
            "creditsGranted": r["credits_granted"],
            "testMode": r["test_mode"],
        }
        for r in rows
    ]


async def money_report(pool: asyncpg.Pool) -> dict[str, Any]:
    """What an operator follows up: settlements the balance could not cover (owed, from the
    ledger's ``uncollected:`` accounts) and paid orders that were not credited."""
    owed = await pool.fetch(
        "SELECT substr(account, length($1) + 1)::uuid AS lenser_id, (-sum(amount))::bigint AS credits"
        " FROM ledger_postings WHERE account LIKE $1 || '%' GROUP BY account HAVING sum(amount) <> 0"
        " ORDER BY credits DESC, lenser_id",
        UNCOLLECTED_PREFIX,
    )
    refused = await pool.fetch(
        "SELECT lenser_id, order_id, credits, reason, refused_at FROM refused_purchases"
        " ORDER BY refused_at DESC, order_id"
    )
    return {
        "uncollected": [{"lenserId": r["lenser_id"], "credits": r["credits"]} for r in owed],
        "uncollectedTotal": sum(r["credits"] for r in owed),
        "refusedPurchases": [
            {
                "lenserId": r["lenser_id"],
                "orderId": r["order_id"],
                "credits": r["credits"],
                "reason": r["reason"],
                "refusedAt": r["refused_at"],
            }
            for r in refused
        ],
    }


# --- what commands read besides their wallet (application/facts.py) ------------------------


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: UUID
    lenser_id: UUID
    reference_id: str
    amount: int
    status: str
    expires_at: datetime
    max_expires_at: datetime
    captured: int | None = None
    overrun: int | None = None
    uncollected: int | None = None
    # The wallet's available credits as the command that answers this left them (reserve only).
    available_balance: int | None = None


async def owners_with_reservations_due(conn: asyncpg.Connection, at: datetime, *, limit: int) -> list[UUID]:
    """The wallets holding a reservation whose time is up at ``at`` (at most ``limit`` of them)."""
    rows = await conn.fetch(
        "SELECT DISTINCT lenser_id FROM reservations WHERE status = 'reserved' AND expires_at <= $1 LIMIT $2",
        at,
        limit,
    )
    return [row["lenser_id"] for row in rows]
