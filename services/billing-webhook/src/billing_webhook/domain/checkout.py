"""A checkout session: what our checkout told LemonSqueezy, so that its order can be credited to
the right lenser. ``created`` -> ``completed`` (its order was paid) | ``expired`` (never paid in
time). A payment is the truth: an order paid after its session expired still completes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self
from uuid import UUID

from billing_webhook.domain.events import (
    CheckoutSessionCompleted,
    CheckoutSessionCreated,
    CheckoutSessionExpired,
)
from lf_eventstore import Aggregate, by_name


class CheckoutSession(Aggregate):
    event_types = by_name(CheckoutSessionCreated, CheckoutSessionCompleted, CheckoutSessionExpired)

    def __init__(self) -> None:
        super().__init__()
        self.session_id: UUID | None = None
        self.status = "new"
        self.expires_at: datetime | None = None

    def open(
        self,
        session_id: UUID,
        *,
        lenser_id: UUID,
        variant_id: str,
        checkout_id: str,
        checkout_url: str,
        expires_at: datetime,
        test_mode: bool,
        at: datetime,
    ) -> None:
        self._record(
            CheckoutSessionCreated(
                session_id=session_id,
                lenser_id=lenser_id,
                variant_id=variant_id,
                checkout_id=checkout_id,
                checkout_url=checkout_url,
                expires_at=expires_at,
                test_mode=test_mode,
                at=at,
            )
        )

    def complete(self, order_id: str, *, at: datetime) -> None:
        if self.status != "completed":
            self._record(CheckoutSessionCompleted(session_id=self.session_id, order_id=order_id, at=at))

    def expire(self, *, at: datetime) -> bool:
        if self.status != "created" or self.expires_at is None or self.expires_at > at:
            return False
        self._record(CheckoutSessionExpired(session_id=self.session_id, at=at))
        return True

    def _apply(self, event: Any) -> None:
        self.session_id = event.session_id
        match event:
            case CheckoutSessionCreated():
                self.status, self.expires_at = "created", event.expires_at
            case CheckoutSessionCompleted():
                self.status = "completed"
            case CheckoutSessionExpired():
                self.status = "expired"

    def to_snapshot(self) -> dict[str, Any]:
        expires_at = self.expires_at.isoformat() if self.expires_at else None
        return {"session_id": str(self.session_id), "status": self.status, "expires_at": expires_at}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        session = cls()
        session.session_id, session.status = UUID(data["session_id"]), data["status"]
        session.expires_at = datetime.fromisoformat(data["expires_at"]) if data["expires_at"] else None
        return session
