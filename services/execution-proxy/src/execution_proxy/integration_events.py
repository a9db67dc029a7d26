"""Which execution events leave the service, and as which contract (the relay's mapping).

Only charged executions concern the wallet: a settlement captures its reservation for the credits
charged, a failure releases it. Executions on the caller's own key or a service's account have no
reservation and stay inside.
"""

from __future__ import annotations

from decimal import Decimal

from lf_contracts.events import ExecutionFailedV1, ExecutionSettledV1, IntegrationEvent, ModelPriceChangedV1
from lf_eventstore import RecordedEvent


def to_message(event: RecordedEvent) -> IntegrationEvent | None:
    d, at = event.data, event.recorded_at
    match event.type:
        case "ExecutionSucceeded" if d["reservation_id"] is not None:
            return ExecutionSettledV1(
                occurred_at=at,
                execution_id=d["execution_id"],
                lenser_id=d["payer_id"],
                reservation_id=d["reservation_id"],
                credits_charged=d["credits_charged"],
                provider=d["provider"],
                model=d["model"],
                input_tokens=d["input_tokens"] + d["cache_read_tokens"] + d["cache_write_tokens"],
                output_tokens=d["output_tokens"],
            )
        case "ExecutionFailed" if d["reservation_id"] is not None:
            return ExecutionFailedV1(
                occurred_at=at,
                execution_id=d["execution_id"],
                lenser_id=d["payer_id"],
                reservation_id=d["reservation_id"],
                reason=d["code"],
            )
        case "PriceQuoted":
            return ModelPriceChangedV1(
                occurred_at=at,
                key=d["key"],
                name=d["name"],
                provider=d["provider"],
                unit_type=d["unit_type"],
                sample_cost_usd=Decimal(d["sample_cost_usd"]),
                sample_cost_credits=d["sample_cost_credits"],
                active=d["active"],
            )
    return None


RELAYED_TYPES = ["ExecutionSucceeded", "ExecutionFailed", "PriceQuoted"]
