"""lightning-jobs' read models, both inline (``writes``: composed into each job command's one
write): job status and the sats ledger."""

from lf_projections import Projection
from lightning_jobs.projections import jobs, ledger

INLINE: tuple[Projection, ...] = (jobs.JOBS, ledger.LEDGER)
ALL: dict[str, Projection] = {p.name: p for p in INLINE}
