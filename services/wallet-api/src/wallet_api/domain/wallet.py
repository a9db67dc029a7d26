"""The wallet aggregate: one lenser's credits, reservations and spending limits.

Every public method checks the rules and raises a ``WalletError`` before recording anything; the
``_apply`` method only folds an event into state, so replaying the log never re-decides.

Amounts are whole credits. ``balance`` is everything the lenser owns, ``reserved`` the part held by
open reservations, ``available`` the rest. Spending limits cap what is spent (captured) plus what
is held, per UTC day and per UTC month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
from uuid import UUID

from lf_eventstore import Aggregate
from wallet_api.domain import errors
from wallet_api.domain.events import (
    EVENT_TYPES,
    CreditsDeposited,
    CreditsReserved,
    ExpiredReservationCharged,
    PurchaseRefused,
    PurchaseReversed,
    RefundAwaitingPurchase,
    ReservationCaptured,
    ReservationExtended,
    ReservationReleased,
    SpendingLimitsSet,
    WalletEvent,
    WalletFrozen,
    WalletOpened,
    WalletUnfrozen,
)

DEFAULT_RESERVATION_TTL = timedelta(minutes=5)
# However often it is extended, a reservation expires at the latest this long after it was made.
DEFAULT_RESERVATION_MAX_LIFETIME = timedelta(hours=1)
# No single amount, cap or balance beyond these: far above any real use, and every sum we keep
# (balances, lifetime totals, spend per period) stays well inside a PostgreSQL bigint.
MAX_AMOUNT = 10**12
MAX_BALANCE = 2**62


@dataclass(slots=True)
class OpenReservation:
    """``max_expires_at`` is the hard deadline: no extension moves ``expires_at`` past it."""

    reference_id: str
    amount: int
    expires_at: datetime
    max_expires_at: datetime


@dataclass(slots=True)
class Captured:
    captured: int
    released: int
    overrun: int


@dataclass(frozen=True, slots=True)
class Deposit:
    """A deposit (an order's credits, a grant) and how much of it was taken back since."""

    amount: int
    reversed: int


@dataclass(slots=True)
class LateCharge:
    charged: int
    uncollected: int
    overrun: int


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def _month(at: datetime) -> str:
    return at.strftime("%Y-%m")


class Wallet(Aggregate):
    event_types = EVENT_TYPES

    def __init__(self) -> None:
        super().__init__()
        self.lenser_id: UUID | None = None
        self.balance = 0
        self.reserved = 0
        self.frozen = False
        self.daily_limit: int | None = None
        self.monthly_limit: int | None = None
        self.spent_day: tuple[str, int] = ("", 0)
        self.spent_month: tuple[str, int] = ("", 0)
        self.open: dict[UUID, OpenReservation] = {}
        self.refunds_awaiting: dict[str, int] = {}

    @property
    def available(self) -> int:
        return self.balance - self.reserved

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def open_for(cls, lenser_id: UUID, at: datetime) -> Self:
        wallet = cls()
        wallet.open_if_new(lenser_id, at=at)
        return wallet

    def open_if_new(self, lenser_id: UUID, *, at: datetime) -> None:
        """A first credit opens the wallet (every other command needs an opened one)."""
        if self.lenser_id is None:
            self._record(WalletOpened(lenser_id=lenser_id, at=at))

    def deposit(self, amount: int, *, source: str, reference_id: str, description: str, at: datetime) -> None:
        _positive(amount)
        if self.balance + amount > MAX_BALANCE:
            raise errors.InvalidAmount()
        self._record(
            CreditsDeposited(
                **self._ids(at),
                amount=amount,
                source=source,
                reference_id=reference_id,
                description=description,
                balance_after=self.balance + amount,
            )
        )
        if source == "purchase" and reference_id in self.refunds_awaiting:
            self.reverse_purchase(reference_id, min(amount, self.refunds_awaiting[reference_id]), at=at)

    def reserve(
        self,
        reservation_id: UUID,
        amount: int,
        *,
        reference_id: str,
        at: datetime,
        ttl: timedelta,
        max_lifetime: timedelta = DEFAULT_RESERVATION_MAX_LIFETIME,
    ) -> OpenReservation:
        """Hold ``amount`` until ``ttl`` passes (at most ``max_lifetime``, the reservation's hard
        deadline however it is extended); returns the open reservation."""
        _positive(amount)
        if self.frozen:
            raise errors.AccountFrozen()
        if amount > self.available:
            raise errors.InsufficientBalance()
        if self._over_a_limit(amount, at):
            raise errors.SpendingLimitExceeded()
        self._record(
            CreditsReserved(
                **self._ids(at),
                reservation_id=reservation_id,
                reference_id=reference_id,
                amount=amount,
                expires_at=at + min(ttl, max_lifetime),
                max_expires_at=at + max_lifetime,
            )
        )
        return self.open[reservation_id]

    def extend(self, reservation_id: UUID, ttl: timedelta, *, at: datetime) -> OpenReservation:
        """Keep an open reservation alive until ``at + ttl``, clamped to its hard deadline; returns it.

        An extension never shortens a reservation: one that already expires later (or at its
        deadline) is left as it is, and nothing is recorded, so a repeated extension is harmless.
        A reservation past its expiry is closed, even before the expiry sweep released it.
        """
        reservation = self._open_reservation(reservation_id)
        if reservation.expires_at <= at:
            raise errors.ReservationClosed()
        expires_at = min(at + ttl, reservation.max_expires_at)
        if expires_at > reservation.expires_at:
            self._record(
                ReservationExtended(
                    **self._ids(at),
                    reservation_id=reservation_id,
                    reference_id=reservation.reference_id,
                    expires_at=expires_at,
                )
            )
        return reservation

    @staticmethod
    def check_repeated_settlement(amount: int, *, reserved: int, settled: int) -> None:
        """A settlement of a reservation settled already (``settled`` credits: captured plus
        uncollected) is a retry, answered with the first one's result, only if it asks the same:
        ``amount`` capped at what was reserved, as the first settlement capped it."""
        if settled != min(amount, reserved):
            raise errors.IdempotencyConflict()

    def capture(self, reservation_id: UUID, amount: int, *, at: datetime) -> Captured:
        if not 0 <= amount <= MAX_AMOUNT:
            raise errors.InvalidAmount()
        reservation = self._open_reservation(reservation_id)
        captured = min(amount, reservation.amount)
        result = Captured(captured, reservation.amount - captured, max(0, amount - reservation.amount))
        self._record(
            ReservationCaptured(
                **self._ids(at),
                reservation_id=reservation_id,
                reference_id=reservation.reference_id,
                reserved=reservation.amount,
                captured=result.captured,
                released=result.released,
                overrun=result.overrun,
                balance_after=self.balance - captured,
            )
        )
        return result

    def charge_expired(
        self, reservation_id: UUID, amount: int, *, reference_id: str, reserved: int, at: datetime
    ) -> LateCharge:
        """Charge a settlement whose reservation (of ``reserved`` credits) expired before it came.

        The execution ran, so its cost is owed: taken from what is available now as a direct
        spend (frozen or over a cap, the work is already done), and what the balance cannot cover
        is recorded as uncollected, never dropped and never taken below zero. As for a capture,
        nothing beyond the reserved amount is charged.
        """
        if not 0 <= amount <= MAX_AMOUNT:
            raise errors.InvalidAmount()
        if reservation_id in self.open:
            raise errors.ReservationStillOpen()
        due = min(amount, reserved)
        charged = min(due, max(self.available, 0))
        result = LateCharge(charged=charged, uncollected=due - charged, overrun=amount - due)
        self._record(
            ExpiredReservationCharged(
                **self._ids(at),
                reservation_id=reservation_id,
                reference_id=reference_id,
                reserved=reserved,
                charged=result.charged,
                uncollected=result.uncollected,
                overrun=result.overrun,
                balance_after=self.balance - charged,
            )
        )
        return result

    def release(self, reservation_id: UUID, *, reason: str, at: datetime) -> int:
        reservation = self._open_reservation(reservation_id)
        self._record(
            ReservationReleased(
                **self._ids(at),
                reservation_id=reservation_id,
                reference_id=reservation.reference_id,
                amount=reservation.amount,
                reason=reason,
            )
        )
        return reservation.amount

    def expire_due(self, at: datetime) -> list[UUID]:
        """Release every reservation whose time is up; returns their ids."""
        due = [rid for rid, r in self.open.items() if r.expires_at <= at]
        for reservation_id in due:
            self.release(reservation_id, reason="expired", at=at)
        return due

    def reverse_purchase(self, order_id: str, credits: int, *, at: datetime) -> None:
        """Take back up to ``credits`` of a refunded order, never more than is available."""
        if credits <= 0:
            return
        taken = min(credits, max(self.available, 0))
        self._record(
            PurchaseReversed(
                **self._ids(at),
                order_id=order_id,
                amount=taken,
                shortfall=credits - taken,
                balance_after=self.balance - taken,
            )
        )

    def refund_purchase(
        self, order_id: str, credits_refunded_total: int, *, purchase: Deposit | None, at: datetime
    ) -> None:
        """Billing refunded ``credits_refunded_total`` of the order in all (cumulative): take back
        what that adds to what was taken back already, never more than the order credited. Before
        the order is credited (``purchase`` None) the refund waits for it."""
        if purchase is None:
            self.await_purchase_for_refund(order_id, credits_refunded_total, at=at)
        else:
            owed = min(credits_refunded_total, purchase.amount) - purchase.reversed
            self.reverse_purchase(order_id, owed, at=at)

    def refuse_purchase(self, order_id: str, credits: int, *, reason: str, at: datetime) -> None:
        """Record a paid order that is not credited (see ``PurchaseRefused``); the balance stays."""
        _positive(credits)
        self._record(PurchaseRefused(**self._ids(at), order_id=order_id, credits=credits, reason=reason))

    def await_purchase_for_refund(self, order_id: str, credits_refunded_total: int, *, at: datetime) -> None:
        if credits_refunded_total > self.refunds_awaiting.get(order_id, 0):
            self._record(
                RefundAwaitingPurchase(
                    **self._ids(at), order_id=order_id, credits_refunded_total=credits_refunded_total
                )
            )

    def freeze(self, *, at: datetime) -> None:
        if not self.frozen:
            self._record(WalletFrozen(**self._ids(at)))

    def unfreeze(self, *, at: datetime) -> None:
        if self.frozen:
            self._record(WalletUnfrozen(**self._ids(at)))

    def set_limits(self, *, daily: int | None, monthly: int | None, at: datetime) -> None:
        for cap in (daily, monthly):
            if cap is not None and not 0 <= cap <= MAX_AMOUNT:
                raise errors.InvalidAmount()
        if (daily, monthly) != (self.daily_limit, self.monthly_limit):
            self._record(SpendingLimitsSet(**self._ids(at), daily=daily, monthly=monthly))

    # --- rules ----------------------------------------------------------------------------

    def _ids(self, at: datetime) -> dict[str, Any]:
        return {"lenser_id": self.lenser_id, "at": at}

    def _open_reservation(self, reservation_id: UUID) -> OpenReservation:
        reservation = self.open.get(reservation_id)
        if reservation is None:
            raise errors.ReservationClosed()
        return reservation

    def spent_today(self, at: datetime) -> int:
        day, spent = self.spent_day
        return spent if day == _day(at) else 0

    def spent_this_month(self, at: datetime) -> int:
        month, spent = self.spent_month
        return spent if month == _month(at) else 0

    def _over_a_limit(self, amount: int, at: datetime) -> bool:
        held = self.reserved + amount
        return (self.daily_limit is not None and self.spent_today(at) + held > self.daily_limit) or (
            self.monthly_limit is not None and self.spent_this_month(at) + held > self.monthly_limit
        )

    # --- state ----------------------------------------------------------------------------

    def _apply(self, event: WalletEvent) -> None:  # type: ignore[override]
        match event:
            case WalletOpened():
                self.lenser_id = event.lenser_id
            case CreditsDeposited():
                self.balance += event.amount
            case CreditsReserved():
                self.reserved += event.amount
                self.open[event.reservation_id] = OpenReservation(
                    event.reference_id,
                    event.amount,
                    event.expires_at,
                    event.max_expires_at or event.expires_at,  # recorded before deadlines: no extension
                )
            case ReservationExtended():
                self.open[event.reservation_id].expires_at = event.expires_at
            case ReservationCaptured():
                del self.open[event.reservation_id]
                self.reserved -= event.reserved
                self._spend(event.captured, event.at)
            case ExpiredReservationCharged():
                self._spend(event.charged, event.at)
            case ReservationReleased():
                del self.open[event.reservation_id]
                self.reserved -= event.amount
            case PurchaseReversed():
                self.balance -= event.amount
                self.refunds_awaiting.pop(event.order_id, None)
            case RefundAwaitingPurchase():
                self.refunds_awaiting[event.order_id] = event.credits_refunded_total
            case WalletFrozen():
                self.frozen = True
            case WalletUnfrozen():
                self.frozen = False
            case SpendingLimitsSet():
                self.daily_limit, self.monthly_limit = event.daily, event.monthly

    def _spend(self, amount: int, at: datetime) -> None:
        self.balance -= amount
        self.spent_day = (_day(at), self.spent_today(at) + amount)
        self.spent_month = (_month(at), self.spent_this_month(at) + amount)

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "lenser_id": str(self.lenser_id),
            "balance": self.balance,
            "reserved": self.reserved,
            "frozen": self.frozen,
            "limits": [self.daily_limit, self.monthly_limit],
            "spent_day": list(self.spent_day),
            "spent_month": list(self.spent_month),
            "open": {str(rid): _open_entry(r) for rid, r in self.open.items()},
            "refunds_awaiting": self.refunds_awaiting,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        wallet = cls()
        wallet.lenser_id = UUID(data["lenser_id"])
        wallet.balance, wallet.reserved, wallet.frozen = data["balance"], data["reserved"], data["frozen"]
        wallet.daily_limit, wallet.monthly_limit = data["limits"]
        wallet.spent_day = tuple(data["spent_day"])  # type: ignore[assignment]
        wallet.spent_month = tuple(data["spent_month"])  # type: ignore[assignment]
        wallet.open = {UUID(rid): _open_reservation(entry) for rid, entry in data["open"].items()}
        wallet.refunds_awaiting = dict(data["refunds_awaiting"])
        return wallet


def _open_entry(r: OpenReservation) -> list[Any]:
    """A snapshot's open reservation: ``[reference, amount, expires]``, plus the deadline when it
    is later than the expiry. Snapshots taken before deadlines existed have three items and load as
    a deadline equal to the expiry, as their ``CreditsReserved`` events replay: so they still
    compare equal to a replay of their stream."""
    entry: list[Any] = [r.reference_id, r.amount, r.expires_at.isoformat()]
    if r.max_expires_at != r.expires_at:
        entry.append(r.max_expires_at.isoformat())
    return entry


def _open_reservation(entry: list[Any]) -> OpenReservation:
    reference_id, amount, expires, *deadline = entry
    expires_at = datetime.fromisoformat(expires)
    return OpenReservation(
        reference_id, amount, expires_at, datetime.fromisoformat(deadline[0]) if deadline else expires_at
    )


def _positive(amount: int) -> None:
    if not 0 < amount <= MAX_AMOUNT:
        raise errors.InvalidAmount()
