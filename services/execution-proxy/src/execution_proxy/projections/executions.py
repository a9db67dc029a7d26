"""Every ended execution, one row each: written in the transaction that records its end."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def started(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    # Started and its outcome are appended together: the row is complete once both are applied.
    d = event.data
    await conn.execute(
        "INSERT INTO executions (execution_id, lenser_id, funding, payer_id, kind, provider, model, streamed,"
        " reference_id, reservation_id, reserved_credits, key_id, status, started_at, finished_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'failed', $13, $13)",
        d["execution_id"],
        d["lenser_id"],
        d["funding"],
        d["payer_id"],
        d["kind"],
        d["provider"],
        d["model"],
        d["streamed"],
        d["reference_id"],
        d["reservation_id"],
        d["reserved_credits"],
        d["key_id"],
        datetime.fromisoformat(d["started_at"]),
    )


async def succeeded(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "UPDATE executions SET status = 'succeeded', input_tokens = $2, output_tokens = $3,"
        " cache_read_tokens = $4, cache_write_tokens = $5, units = $6, usage_source = $7, cost_usd = $8,"
        " credits_charged = $9, overrun_credits = $10, client_disconnected = $11, latency_ms = $12,"
        " finished_at = $13, cancelled = $14, cut_short = $15 WHERE execution_id = $1",
        d["execution_id"],
        d["input_tokens"],
        d["output_tokens"],
        d["cache_read_tokens"],
        d["cache_write_tokens"],
        d["units"],
        d["usage_source"],
        Decimal(d["cost_usd"]),
        d["credits_charged"],
        d["overrun_credits"],
        d["client_disconnected"],
        d["latency_ms"],
        datetime.fromisoformat(d["finished_at"]),
        d.get("cancelled", False),  # events recorded before it existed: not cancelled
        d.get("cut_short", d.get("cancelled", False)),  # before it existed: only a cancel cut one short
    )


async def failed(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "UPDATE executions SET status = 'failed', error_code = $2, finished_at = $3,"
        " cancelled = $2 = 'cancelled' WHERE execution_id = $1",
        d["execution_id"],
        d["code"],
        datetime.fromisoformat(d["finished_at"]),
    )


PROJECTION = Projection(
    name="executions",
    tables=("executions",),
    handlers={"ExecutionStarted": started, "ExecutionSucceeded": succeeded, "ExecutionFailed": failed},
)
