from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from lf_contracts.events.base import LenserId, Payload


class ExecutionSettledV1(Payload):
    """An execution finished: capture its reservation for what it actually cost."""

    routing_key: ClassVar[str] = "execution.execution_settled.v1"
    execution_id: str = Field(min_length=1, max_length=200)
    lenser_id: LenserId
    reservation_id: UUID
    credits_charged: int = Field(ge=0)
    provider: str
    model: str
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class ExecutionFailedV1(Payload):
    """An execution failed before costing anything: release its reservation."""

    routing_key: ClassVar[str] = "execution.execution_failed.v1"
    execution_id: str = Field(min_length=1, max_length=200)
    lenser_id: LenserId
    reservation_id: UUID
    reason: str = ""


class ModelPriceChangedV1(Payload):
    """The price of one model, as execution-proxy's catalogue states it now."""

    routing_key: ClassVar[str] = "execution.model_price_changed.v1"
    key: str
    name: str
    provider: str
    unit_type: Literal["tokens", "image"]
    sample_cost_usd: Decimal
    sample_cost_credits: int = Field(ge=0)
    active: bool = True
