from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lf_contracts.events.base import LenserId, Payload


class CreditsDepositedV1(Payload):
    routing_key: ClassVar[str] = "wallet.credits_deposited.v1"
    lenser_id: LenserId
    credits: int = Field(gt=0)
    source: str
    reference_id: str
    balance: int


class CreditsSpentV1(Payload):
    routing_key: ClassVar[str] = "wallet.credits_spent.v1"
    lenser_id: LenserId
    reservation_id: str
    reference_id: str
    credits: int = Field(ge=0)
    balance: int


class CreditsReversedV1(Payload):
    routing_key: ClassVar[str] = "wallet.credits_reversed.v1"
    lenser_id: LenserId
    order_id: str
    credits: int = Field(ge=0)
    balance: int
