"""Credits that came from outside, keyed by order id or grant key: what makes them idempotent.
Paid orders that were refused (not credited) are kept beside them, one row per order."""

from __future__ import annotations

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def deposited(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "INSERT INTO deposits (lenser_id, source, reference_id, amount) VALUES ($1, $2, $3, $4)",
        d["lenser_id"],
        d["source"],
        d["reference_id"],
        d["amount"],
    )


async def reversed_(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    # What was asked back counts, taken or not: a later, larger refund asks only for the difference.
    d = event.data
    await conn.execute(
        "UPDATE deposits SET reversed = reversed + $3 + $4"
        " WHERE lenser_id = $1 AND source = 'purchase' AND reference_id = $2",
        d["lenser_id"],
        d["order_id"],
        d["amount"],
        d["shortfall"],
    )


async def refused(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "INSERT INTO refused_purchases (lenser_id, order_id, credits, reason, refused_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        d["lenser_id"],
        d["order_id"],
        d["credits"],
        d["reason"],
        event.recorded_at,
    )


PROJECTION = Projection(
    name="deposits",
    tables=("deposits", "refused_purchases"),
    handlers={"CreditsDeposited": deposited, "PurchaseReversed": reversed_, "PurchaseRefused": refused},
)
