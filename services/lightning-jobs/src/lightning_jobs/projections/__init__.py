"""lightning-jobs' read models, both inline (``writes``: composed into each job command's one
write): job status, session status and the sats ledger."""

from lf_projections import Projection
from lightning_jobs.projections import jobs, ledger, sessions

INLINE: tuple[Projection, ...] = (jobs.JOBS, sessions.SESSIONS, ledger.LEDGER)
ALL: dict[str, Projection] = {p.name: p for p in INLINE}
