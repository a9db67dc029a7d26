"""execution-proxy's read models, all inline: written in the transaction that records their events."""

from execution_proxy.projections import byok_keys, executions
from lf_projections import Projection

INLINE: tuple[Projection, ...] = (executions.PROJECTION, byok_keys.PROJECTION)
ALL: dict[str, Projection] = {p.name: p for p in INLINE}
