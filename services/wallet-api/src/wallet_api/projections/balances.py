"""One row per wallet: the figures GET /wallet/balance answers with."""

from __future__ import annotations

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def opened(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "INSERT INTO balances (lenser_id, opened_at, updated_at) VALUES ($1, $2, $2)",
        event.data["lenser_id"],
        event.recorded_at,
    )


def _update(assignments: str, *fields: str):
    sql = f"UPDATE balances SET {assignments}, updated_at = $2 WHERE lenser_id = $1"

    async def handle(conn: asyncpg.Connection, event: RecordedEvent) -> None:
        await conn.execute(sql, event.data["lenser_id"], event.recorded_at, *(event.data[f] for f in fields))

    return handle


PROJECTION = Projection(
    name="balances",
    tables=("balances",),
    handlers={
        "WalletOpened": opened,
        "CreditsDeposited": _update(
            "balance = balance + $3, lifetime_deposits = lifetime_deposits + $3", "amount"
        ),
        "CreditsReserved": _update("reserved = reserved + $3", "amount"),
        "ReservationCaptured": _update(
            "reserved = reserved - $3, balance = balance - $4, lifetime_spent = lifetime_spent + $4",
            "reserved",
            "captured",
        ),
        "ExpiredReservationCharged": _update(
            "balance = balance - $3, lifetime_spent = lifetime_spent + $3", "charged"
        ),
        "ReservationReleased": _update("reserved = reserved - $3", "amount"),
        "PurchaseReversed": _update("balance = balance - $3", "amount"),
        "WalletFrozen": _update("frozen = true"),
        "WalletUnfrozen": _update("frozen = false"),
        "SpendingLimitsSet": _update("daily_limit = $3, monthly_limit = $4", "daily", "monthly"),
    },
)
