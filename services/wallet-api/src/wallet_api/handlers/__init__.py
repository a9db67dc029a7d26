"""Integration-event consumers. ``HANDLERS`` is the one place that shows who handles what.

Each handler runs inside the consumer's transaction, the one that records the message id in the
inbox: the effect and the "seen it" mark commit together or not at all.
"""

from lf_contracts.events import (
    CreditPackChangedV1,
    CreditsPurchasedV1,
    ExecutionFailedV1,
    ExecutionSettledV1,
    ModelPriceChangedV1,
    OrderRefundedV1,
)
from wallet_api.handlers.billing import on_credits_purchased, on_order_refunded
from wallet_api.handlers.catalogue import on_credit_pack_changed
from wallet_api.handlers.execution import on_execution_failed, on_execution_settled, on_model_price_changed

HANDLERS = {
    CreditsPurchasedV1: on_credits_purchased,
    OrderRefundedV1: on_order_refunded,
    ExecutionSettledV1: on_execution_settled,
    ExecutionFailedV1: on_execution_failed,
    ModelPriceChangedV1: on_model_price_changed,
    CreditPackChangedV1: on_credit_pack_changed,
}

__all__ = ["HANDLERS"]
