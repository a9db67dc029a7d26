"""The platform's read models. ``INLINE`` are written in each command's own statement (the
catalogue's and run status); followed ones (run events) arrive with SSE."""

from lf_projections import Projection
from platform_api.projections import catalogue, partners, runs

INLINE: tuple[Projection, ...] = (
    catalogue.LENSES,
    catalogue.WORKFLOWS,
    partners.PARTNER_PROVISIONS,
    runs.RUNS,
)
ALL: dict[str, Projection] = {p.name: p for p in INLINE}
