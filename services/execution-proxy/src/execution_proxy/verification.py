"""What ``python -m execution_proxy verify`` checks: every aggregate by its stream prefix, every
read model. A new aggregate or projection is added here too."""

from execution_proxy.application import catalogue, executions, keys
from execution_proxy.projections import INLINE
from lf_projections.verify import Verifiable

VERIFIABLE = Verifiable(
    aggregates=(catalogue.REPOSITORY, executions.REPOSITORY, keys.REPOSITORY), projections=INLINE
)
