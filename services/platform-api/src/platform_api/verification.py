"""What ``python -m platform_api verify`` checks: every aggregate by its stream prefix, every read
model. A new aggregate or projection is added here too."""

from lf_projections.verify import Verifiable
from platform_api.application.catalogue import LENSES, WORKFLOWS
from platform_api.application.partners import PROVISIONINGS
from platform_api.application.runs import RUNS
from platform_api.projections import INLINE

VERIFIABLE = Verifiable(aggregates=(LENSES, WORKFLOWS, PROVISIONINGS, RUNS), projections=INLINE)
