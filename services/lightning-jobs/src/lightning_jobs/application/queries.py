"""Reads of the inline read models: a job's row, the jobs the watcher looks after, the ledger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

PENDING_STATES = ("awaiting_eval_payment", "awaiting_work_payment", "evaluating", "executing")


class JobQueries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def job(self, job_id: UUID) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM jobs WHERE job_id = $1", job_id)
        return dict(row) if row is not None else None

    async def pending(self, limit: int) -> list[UUID]:
        """Jobs waiting on a payment, and jobs in a step whose claim has lapsed (its claimant died):
        the oldest first, so none waits behind newer ones for ever."""
        rows = await self.pool.fetch(
            "SELECT job_id FROM jobs"
            " WHERE state = ANY($1::text[])"
            " AND (state LIKE 'awaiting%' OR step_lease_until <= now())"
            " ORDER BY updated_at LIMIT $2",
            list(PENDING_STATES),
            limit,
        )
        return [row["job_id"] for row in rows]

    async def paid_by(self, payment_hash: str) -> UUID | None:
        """The job one of whose invoices (eval or work) has this payment hash."""
        return await self.pool.fetchval(
            "SELECT job_id FROM jobs WHERE eval_payment_hash = $1"
            " UNION ALL SELECT job_id FROM jobs WHERE work_payment_hash = $1 LIMIT 1",
            payment_hash,
        )

    async def unsettled_refunds(self, older_than_seconds: float, limit: int) -> list[tuple[UUID, str]]:
        """Refund claims neither paid nor released for a while: their claimant died between paying
        and reporting (or before paying). (job id, payment hash) each, the oldest first."""
        rows = await self.pool.fetch(
            "SELECT job_id, refund_payment_hash FROM jobs"
            " WHERE refund_claimed_at < now() - make_interval(secs => $1)"
            " ORDER BY refund_claimed_at LIMIT $2",
            older_than_seconds,
            limit,
        )
        return [(row["job_id"], row["refund_payment_hash"]) for row in rows]

    async def trial_balance(self) -> int:
        """The sum of every posting: zero, always (each event's postings balance)."""
        return await self.pool.fetchval("SELECT coalesce(sum(amount), 0)::bigint FROM ledger_postings")

    async def balances(self, job_id: UUID | None = None) -> dict[str, int]:
        """Each account's balance (of one job's postings, or of all)."""
        rows = await self.pool.fetch(
            "SELECT account, sum(amount)::bigint AS balance FROM ledger_postings"
            " WHERE $1::uuid IS NULL OR job_id = $1 GROUP BY account",
            job_id,
        )
        return {row["account"]: row["balance"] for row in rows}
