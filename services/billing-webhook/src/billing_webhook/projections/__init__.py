"""Billing's read models, all inline: each is written in the transaction of the command (or of the
delivery processor) that recorded its events, so a lookup always sees what has committed."""

from billing_webhook.projections import checkout_sessions, credit_packs, deliveries, subscriptions
from lf_projections import Projection

INLINE: tuple[Projection, ...] = (
    credit_packs.PROJECTION,
    checkout_sessions.PROJECTION,
    deliveries.PROJECTION,
    subscriptions.PROJECTION,
)
ALL: dict[str, Projection] = {p.name: p for p in INLINE}
