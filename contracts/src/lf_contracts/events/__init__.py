"""Integration events: the messages services exchange over the ``lf.events`` exchange.

Each model names its routing key ``<context>.<event_name>.v<N>``. Consumers ignore unknown fields;
a breaking change is a new model with the next version, published beside the old one.
"""

from lf_contracts.events.base import REGISTRY, IntegrationEvent, model_for
from lf_contracts.events.billing import CreditPackChangedV1, CreditsPurchasedV1, OrderRefundedV1
from lf_contracts.events.execution import (
    ExecutionFailedV1,
    ExecutionSettledV1,
    ModelPriceChangedV1,
)
from lf_contracts.events.platform import RunNodeQueuedV1
from lf_contracts.events.wallet import CreditsDepositedV1, CreditsReversedV1, CreditsSpentV1

__all__ = [
    "REGISTRY",
    "CreditPackChangedV1",
    "CreditsDepositedV1",
    "CreditsPurchasedV1",
    "CreditsReversedV1",
    "CreditsSpentV1",
    "ExecutionFailedV1",
    "ExecutionSettledV1",
    "IntegrationEvent",
    "ModelPriceChangedV1",
    "OrderRefundedV1",
    "RunNodeQueuedV1",
    "model_for",
]
