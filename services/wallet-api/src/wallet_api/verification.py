"""What ``python -m wallet_api verify`` checks: every aggregate by its stream prefix, every read model.

A new aggregate or projection is added here too; a stream no aggregate claims is reported.
"""

from lf_projections.verify import Verifiable
from wallet_api.application.use_cases import REPOSITORY
from wallet_api.projections import INLINE, LEDGER

VERIFIABLE = Verifiable(aggregates=(REPOSITORY,), projections=(*INLINE, LEDGER))
