"""What happened to a wallet. Stored in the log under the class name; never changed once stored.

Each event carries the lenser id and the figures a reader needs (``balance_after``), so that
projections are simple, deterministic functions of single events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from lf_eventstore import DomainEvent, by_name


class WalletEvent(DomainEvent):
    lenser_id: UUID
    at: datetime


class WalletOpened(WalletEvent):
    pass


class CreditsDeposited(WalletEvent):
    """Credits came in: a paid order (``purchase``) or a grant from the platform (``grant``)."""

    amount: int
    source: Literal["purchase", "grant"]
    reference_id: str
    description: str
    balance_after: int


class CreditsReserved(WalletEvent):
    """``max_expires_at`` is the hard deadline no extension passes. Events recorded before it
    existed have none: their deadline is their ``expires_at`` (they cannot be extended)."""

    reservation_id: UUID
    reference_id: str
    amount: int
    expires_at: datetime
    max_expires_at: datetime | None = None


class ReservationExtended(WalletEvent):
    """An open reservation kept alive (a long stream): it now expires at ``expires_at``, never
    later than its deadline."""

    reservation_id: UUID
    reference_id: str
    expires_at: datetime


class ReservationCaptured(WalletEvent):
    """The reservation settled: ``captured`` spent, ``released`` back to available.

    ``overrun`` is what the caller asked beyond the reserved amount: recorded, never charged.
    """

    reservation_id: UUID
    reference_id: str
    reserved: int
    captured: int
    released: int
    overrun: int
    balance_after: int


class ExpiredReservationCharged(WalletEvent):
    """A settlement arrived after its reservation expired: the execution ran, so it is charged.

    ``charged`` came out of the available balance as a direct spend; ``uncollected`` is what the
    balance could not cover (owed, on its own ledger account); ``overrun`` is what was asked beyond
    the reserved amount, as for a capture: recorded, never charged.
    """

    reservation_id: UUID
    reference_id: str
    reserved: int
    charged: int
    uncollected: int
    overrun: int
    balance_after: int


class PurchaseRefused(WalletEvent):
    """A paid order that was not credited (``test_mode``: no money moved and this deployment does
    not accept test-mode payments). Kept so an operator sees it, and so a repeat is recognised."""

    order_id: str
    credits: int
    reason: Literal["test_mode"]


class ReservationReleased(WalletEvent):
    reservation_id: UUID
    reference_id: str
    amount: int
    reason: Literal["released", "expired", "execution_failed"]


class PurchaseReversed(WalletEvent):
    """A refunded order took its credits back; ``shortfall`` is what was already spent."""

    order_id: str
    amount: int
    shortfall: int
    balance_after: int


class RefundAwaitingPurchase(WalletEvent):
    """A refund arrived before its order: it is applied when the order's credits arrive."""

    order_id: str
    credits_refunded_total: int


class WalletFrozen(WalletEvent):
    pass


class WalletUnfrozen(WalletEvent):
    pass


class SpendingLimitsSet(WalletEvent):
    daily: int | None
    monthly: int | None


EVENT_TYPES = by_name(
    WalletOpened,
    CreditsDeposited,
    CreditsReserved,
    ReservationExtended,
    ReservationCaptured,
    ReservationReleased,
    ExpiredReservationCharged,
    PurchaseRefused,
    PurchaseReversed,
    RefundAwaitingPurchase,
    WalletFrozen,
    WalletUnfrozen,
    SpendingLimitsSet,
)
