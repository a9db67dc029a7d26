"""What a wallet is asked to do, as plain data: built by the routes and the message handlers and
passed whole to a use case (``application.use_cases.Wallets``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from wallet_api.domain.wallet import DEFAULT_RESERVATION_TTL


@dataclass(frozen=True, slots=True)
class Reserve:
    """Hold ``amount`` for ``reference_id`` (the caller's idempotency key) until ``ttl`` passes."""

    lenser_id: UUID
    amount: int
    reference_id: str
    ttl: timedelta = DEFAULT_RESERVATION_TTL


@dataclass(frozen=True, slots=True)
class Extend:
    """Keep an open reservation alive until ``ttl`` from now (at most until its hard deadline)."""

    reservation_id: UUID
    ttl: timedelta


@dataclass(frozen=True, slots=True)
class Capture:
    """Spend what a reservation held (up to ``amount``); the rest goes back."""

    reservation_id: UUID
    amount: int


@dataclass(frozen=True, slots=True)
class Settle:
    """An execution's settlement: a capture, or a late charge when the reservation expired first."""

    reservation_id: UUID
    amount: int


@dataclass(frozen=True, slots=True)
class Release:
    reservation_id: UUID
    reason: str = "released"


@dataclass(frozen=True, slots=True)
class Grant:
    """Promotional credits, granted once per ``idempotency_key``."""

    lenser_id: UUID
    amount: int
    reason: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class CreditPurchase:
    """A paid order's credits, credited once per ``order_id``."""

    lenser_id: UUID
    order_id: str
    credits: int
    description: str
    test_mode: bool = False


@dataclass(frozen=True, slots=True)
class ReversePurchase:
    """``credits_refunded_total`` is the order's cumulative refund, in credits."""

    lenser_id: UUID
    order_id: str
    credits_refunded_total: int


@dataclass(frozen=True, slots=True)
class SetFrozen:
    lenser_id: UUID
    frozen: bool


@dataclass(frozen=True, slots=True)
class SetLimits:
    lenser_id: UUID
    daily: int | None
    monthly: int | None
