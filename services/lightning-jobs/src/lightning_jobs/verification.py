"""What ``python -m lightning_jobs verify`` checks: every aggregate by its stream prefix, every read
model. A new aggregate or projection is added here too."""

from lf_projections.verify import Verifiable
from lightning_jobs.application.jobs import JOBS
from lightning_jobs.application.l402 import TOKENS
from lightning_jobs.application.sessions import SESSIONS
from lightning_jobs.projections import INLINE

VERIFIABLE = Verifiable(aggregates=(JOBS, SESSIONS, TOKENS), projections=INLINE)
