"""A webhook delivery: recorded once per distinct body, then processed from that record.

``pending`` (received, or a replay was asked) -> ``processed`` | ``failed``. A failed delivery
can be replayed: by an operator, or by LemonSqueezy resending the same body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from billing_webhook.domain.events import (
    DeliveryFailed,
    DeliveryProcessed,
    DeliveryReceived,
    DeliveryReplayRequested,
)
from billing_webhook.domain.outcome import Outcome
from lf_eventstore import Aggregate, by_name


class Delivery(Aggregate):
    event_types = by_name(DeliveryReceived, DeliveryProcessed, DeliveryFailed, DeliveryReplayRequested)

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.event_name = ""
        self.payload: dict[str, Any] = {}
        self.status = "new"

    def receive(self, key: str, event_name: str, payload: dict[str, Any], *, at: datetime) -> None:
        self._record(
            DeliveryReceived(delivery_key=key, event_name=event_name, payload=payload, received_at=at)
        )

    def processed(self, outcome: Outcome, *, at: datetime) -> None:
        self._record(
            DeliveryProcessed(delivery_key=self.key, outcome=outcome.kind, detail=outcome.detail, at=at)
        )

    def failed(self, error: str, *, at: datetime) -> None:
        self._record(DeliveryFailed(delivery_key=self.key, error=error, at=at))

    def request_replay(self, reason: str, *, at: datetime) -> bool:
        """False while it is still waiting to be processed: one pending run is enough."""
        if self.status == "pending":
            return False
        self._record(DeliveryReplayRequested(delivery_key=self.key, reason=reason, at=at))
        return True

    def _apply(self, event: Any) -> None:
        match event:
            case DeliveryReceived():
                self.key, self.event_name, self.payload = event.delivery_key, event.event_name, event.payload
                self.status = "pending"
            case DeliveryProcessed():
                self.status = "processed"
            case DeliveryFailed():
                self.status = "failed"
            case DeliveryReplayRequested():
                self.status = "pending"

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "event_name": self.event_name,
            "payload": self.payload,
            "status": self.status,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        delivery = cls()
        delivery.key, delivery.event_name = data["key"], data["event_name"]
        delivery.payload, delivery.status = data["payload"], data["status"]
        return delivery
