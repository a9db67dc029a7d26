"""What ``python -m billing_webhook verify`` checks: every aggregate by its stream prefix, every read
model. A new aggregate or projection is added here too; a stream no aggregate claims is reported."""

from billing_webhook.application import catalogue, checkouts, deliveries, orders, subscriptions
from billing_webhook.projections import INLINE
from lf_projections.verify import Verifiable

VERIFIABLE = Verifiable(
    aggregates=tuple(
        module.REPOSITORY for module in (catalogue, checkouts, deliveries, orders, subscriptions)
    ),
    projections=INLINE,
)
