"""Which wallet events leave the service, and as which contract (the relay's mapping)."""

from __future__ import annotations

from lf_contracts.events import CreditsDepositedV1, CreditsReversedV1, CreditsSpentV1, IntegrationEvent
from lf_eventstore import RecordedEvent


def to_message(event: RecordedEvent) -> IntegrationEvent | None:
    d, at = event.data, event.recorded_at
    match event.type:
        case "CreditsDeposited":
            return CreditsDepositedV1(
                occurred_at=at,
                lenser_id=d["lenser_id"],
                credits=d["amount"],
                source=d["source"],
                reference_id=d["reference_id"],
                balance=d["balance_after"],
            )
        case "ReservationCaptured":
            return CreditsSpentV1(
                occurred_at=at,
                lenser_id=d["lenser_id"],
                reservation_id=d["reservation_id"],
                reference_id=d["reference_id"],
                credits=d["captured"],
                balance=d["balance_after"],
            )
        case "PurchaseReversed":
            return CreditsReversedV1(
                occurred_at=at,
                lenser_id=d["lenser_id"],
                order_id=d["order_id"],
                credits=d["amount"],
                balance=d["balance_after"],
            )
    return None


RELAYED_TYPES = ["CreditsDeposited", "ReservationCaptured", "PurchaseReversed"]
