"""A payment pushed to us (LNbits' webhook, ``http/lnbits.py``): which job or session it pays, moved
on by the same code as a ``GET`` or the watcher (``JobFlow.advance``, ``SessionFlow.advance``).

The notification is only a hint of which invoice to look at: whoever sent it, nothing moves unless
the backend itself says the invoice is paid (``advance`` asks it). An unknown hash, an unpaid
invoice, a job that has moved on, a duplicate delivery: nothing changes. So a forged notification
costs one lookup of an invoice of ours, no more than anyone's ``GET /api/jobs/{id}`` does.
"""

from __future__ import annotations

from typing import Literal

from lightning_jobs.application.flow import JobFlow
from lightning_jobs.application.sessions import SessionFlow


class PaymentNotifications:
    def __init__(self, jobs: JobFlow, sessions: SessionFlow) -> None:
        self.jobs, self.sessions = jobs, sessions

    async def paid(self, payment_hash: str) -> Literal["job", "session"] | None:
        """Advance what this invoice pays for; what it was (None: not one of our invoices). A job's
        step is claimed here and run in the flow's own task: the caller gets its answer without
        waiting for the AI."""
        job_id = await self.jobs.queries.paid_by(payment_hash)
        if job_id is not None:
            await self.jobs.advance(job_id, wait=False)
            return "job"
        session_id = await self.sessions.queries.paid_by(payment_hash)
        if session_id is not None:
            await self.sessions.advance(session_id)
            return "session"
        return None
