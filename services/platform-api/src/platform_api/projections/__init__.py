"""The platform's read models. ``INLINE`` are written in each command's own statement; followed
ones (run status, run events) arrive with runs."""

from lf_projections import Projection
from platform_api.projections import catalogue, partners

INLINE: tuple[Projection, ...] = (catalogue.LENSES, catalogue.WORKFLOWS, partners.PARTNER_PROVISIONS)
ALL: dict[str, Projection] = {p.name: p for p in INLINE}
