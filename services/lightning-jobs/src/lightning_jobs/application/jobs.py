"""Jobs' commands: each one command on the job's stream (``CommandRunner.submit``), decided purely
by the ``Job`` aggregate; concurrent ones on one job are queued behind its stream's lock (and in one
process group-committed), which is what lets exactly one caller claim a step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, UseCases
from lightning_jobs.domain.job import Claim, Job, WorkQuoted, no_job
from lightning_jobs.projections import INLINE

JOBS = AggregateRepository(Job, "job")
T = TypeVar("T")


class JobUseCases(UseCases):
    def __init__(
        self, pool: asyncpg.Pool, *, lease: timedelta, appended: Callable[[], None] | None = None
    ) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended))
        self.lease = lease

    async def _on(
        self,
        job_id: UUID,
        decide: Callable[[Decision, Job], T],
        metadata: dict[str, Any],
        *,
        new: bool = False,
    ) -> T:
        return await self.commands.submit(
            Command(JOBS, job_id, decide, metadata, new=None if new else no_job)
        )

    async def create(
        self,
        job_id: UUID,
        request: str,
        payment_hash: str,
        invoice: str,
        amount_sats: int,
        *,
        metadata: dict[str, Any],
    ) -> None:
        await self._on(
            job_id,
            lambda _, job: job.create(job_id, request, payment_hash, invoice, amount_sats),
            metadata,
            new=True,
        )

    async def eval_paid(self, job_id: UUID, *, metadata: dict[str, Any]) -> Claim | None:
        return await self._on(job_id, lambda d, job: job.eval_paid(d.now, self.lease), metadata)

    async def work_paid(self, job_id: UUID, *, metadata: dict[str, Any]) -> Claim | None:
        return await self._on(job_id, lambda d, job: job.work_paid(d.now, self.lease), metadata)

    async def reclaim(self, job_id: UUID, *, metadata: dict[str, Any]) -> Claim | None:
        return await self._on(job_id, lambda d, job: job.reclaim(d.now, self.lease), metadata)

    async def retried(
        self,
        job_id: UUID,
        step: str,
        attempt: int,
        code: str,
        error_message: str,
        *,
        metadata: dict[str, Any],
    ) -> None:
        await self._on(job_id, lambda _, job: job.retried(step, attempt, code, error_message), metadata)

    async def rejected(self, job_id: UUID, reason: str, *, metadata: dict[str, Any]) -> None:
        await self._on(job_id, lambda _, job: job.rejected(reason), metadata)

    async def work_invoiced(
        self, job_id: UUID, reason: str, quote: WorkQuoted, *, metadata: dict[str, Any]
    ) -> None:
        await self._on(job_id, lambda _, job: job.work_invoiced(reason, quote), metadata)

    async def completed(self, job_id: UUID, *, metadata: dict[str, Any], **outcome: Any) -> None:
        await self._on(job_id, lambda _, job: job.completed(**outcome), metadata)

    async def failed(self, job_id: UUID, step: str, error_message: str, *, metadata: dict[str, Any]) -> None:
        await self._on(job_id, lambda _, job: job.failed(step, error_message), metadata)

    async def claim_refund(
        self, job_id: UUID, payment_hash: str, invoice: str, amount_sats: int, *, metadata: dict[str, Any]
    ) -> None:
        await self._on(job_id, lambda _, job: job.claim_refund(payment_hash, invoice, amount_sats), metadata)

    async def refund_paid(self, job_id: UUID, payment_hash: str, *, metadata: dict[str, Any]) -> None:
        await self._on(job_id, lambda _, job: job.refund_paid(payment_hash), metadata)

    async def refund_failed(
        self, job_id: UUID, payment_hash: str, reason: str, *, metadata: dict[str, Any]
    ) -> None:
        await self._on(job_id, lambda _, job: job.refund_failed(payment_hash, reason), metadata)
