"""Each subscription's newest known state and how many renewals were credited."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def changed(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "INSERT INTO subscriptions (subscription_id, lenser_id, variant_id, product_id, status, cancelled,"
        " renews_at, ends_at, state_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (subscription_id) DO UPDATE SET lenser_id = $2, variant_id = $3, product_id = $4,"
        " status = $5, cancelled = $6, renews_at = $7, ends_at = $8, state_at = $9, updated_at = $10",
        d["subscription_id"],
        d["lenser_id"],
        d["variant_id"],
        d["product_id"],
        d["status"],
        d["cancelled"],
        _moment(d["renews_at"]),
        _moment(d["ends_at"]),
        _moment(d["state_at"]),
        event.recorded_at,
    )


async def invoice_paid(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE subscriptions SET invoices_credited = invoices_credited + 1, credits_granted ="
        " credits_granted + $2, updated_at = $3 WHERE subscription_id = $1",
        event.data["subscription_id"],
        event.data["credits"],
        event.recorded_at,
    )


PROJECTION = Projection(
    name="subscriptions",
    tables=("subscriptions",),
    handlers={"SubscriptionChanged": changed, "SubscriptionInvoicePaid": invoice_paid},
)
