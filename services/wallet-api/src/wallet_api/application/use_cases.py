"""The wallet use cases, each one command on one wallet, decided by ``lf_eventstore``'s runner.

Each is a ``Command``: the wallet's stream is locked and loaded together with the facts the command
names (``facts``: the reservation it settles, what an idempotency key made already, read from the
inline read models after the lock, so a concurrent retry always sees the first attempt's outcome);
its decision is pure; the events and their read models are written in one statement. Concurrent
commands on one wallet in this process are decided in one transaction (group commit), each as if
alone. A first credit (a grant, a purchase, a refund) opens the wallet; every other command
refuses a wallet that does not exist.

The time of a command is the database's (its transaction time), never the replica's: spending
windows (UTC day, month) and expiry then agree across replicas whose clocks drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, UseCases
from wallet_api.application import facts, queries
from wallet_api.application.facts import Found
from wallet_api.application.queries import Reservation
from wallet_api.domain import errors
from wallet_api.domain.commands import (
    Capture,
    CreditPurchase,
    Extend,
    Grant,
    Release,
    Reserve,
    ReversePurchase,
    SetFrozen,
    SetLimits,
    Settle,
)
from wallet_api.domain.wallet import DEFAULT_RESERVATION_MAX_LIFETIME, Wallet
from wallet_api.metrics import count_credits
from wallet_api.projections import INLINE

REPOSITORY = AggregateRepository(Wallet, "wallet", snapshot_every=50)

Clock = Callable[[datetime], datetime]
"""A command's time from the database's transaction time (tests move it; production keeps it)."""

OWNERS_KEPT = 100_000
"""Reservations whose wallet this process remembers (a reservation never changes wallet)."""


def database_clock(now: datetime) -> datetime:
    """The command's transaction time (``now()``): one clock for every replica."""
    return now


def no_wallet() -> Wallet:
    """The factory of commands that need an opened wallet."""
    raise errors.WalletNotFound()


class Wallets(UseCases):
    """On the pool, or ``on(conn)`` inside a caller's transaction (message consumers, whose inbox
    row must commit together with the effect)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock = database_clock,
        *,
        accept_test_mode_payments: bool = False,
        reservation_max_lifetime: timedelta = DEFAULT_RESERVATION_MAX_LIFETIME,
        appended: Callable[[], None] | None = None,
    ) -> None:
        """``appended``: the process's ``Wakeup.appended``, called after each command commits."""
        super().__init__(CommandRunner(pool, INLINE, recorded=count_credits, appended=appended))
        self.now = clock
        self.accept_test_mode_payments = accept_test_mode_payments
        self.reservation_max_lifetime = reservation_max_lifetime
        # reservation id -> its wallet: a capture then goes straight to the wallet's stream (and
        # can share its batch) instead of finding it in the command's read.
        self._owners: dict[UUID, UUID] = {}

    def _remember_owner(self, reservation_id: UUID, lenser_id: UUID) -> None:
        if len(self._owners) >= OWNERS_KEPT:
            del self._owners[next(iter(self._owners))]
        self._owners[reservation_id] = lenser_id

    def _on_wallet_of(self, reservation_id: UUID) -> object:
        """The stream key of a command on ``reservation_id``: its wallet if known, else a lookup."""
        return self._owners.get(reservation_id, facts.OWNER)

    # --- reservations ---------------------------------------------------------------------

    async def reserve(self, command: Reserve, *, metadata: dict[str, Any]) -> tuple[Reservation, bool]:
        """The reservation for the command's reference id and whether this call created it, with
        the wallet's available credits right after it (for a retry: as they are now)."""

        def decide(decision: Decision, wallet: Wallet) -> tuple[Reservation, bool]:
            found: Found = decision.facts
            existing = found.by_reference.get(command.reference_id)
            if existing is not None:
                if existing.amount != command.amount:
                    raise errors.IdempotencyConflict()
                return replace(existing, available_balance=wallet.available), False
            reservation_id = uuid4()
            held = wallet.reserve(
                reservation_id,
                command.amount,
                reference_id=command.reference_id,
                at=self.now(decision.now),
                ttl=command.ttl,
                max_lifetime=self.reservation_max_lifetime,
            )
            reservation = Reservation(
                reservation_id,
                command.lenser_id,
                command.reference_id,
                command.amount,
                "reserved",
                held.expires_at,
                held.max_expires_at,
                available_balance=wallet.available,
            )
            return reservation, True

        reservation, created = await self.commands.submit(
            Command(
                REPOSITORY,
                command.lenser_id,
                decide,
                metadata,
                new=no_wallet,
                facts=facts.needs(command.lenser_id, references=[command.reference_id]),
            )
        )
        self._remember_owner(reservation.reservation_id, command.lenser_id)
        return reservation, created

    async def extend(self, command: Extend, *, metadata: dict[str, Any]) -> Reservation:
        """Move an open reservation's expiry to now + ttl, never past its hard deadline nor earlier
        than it is; a reservation no longer ``reserved`` (or already past its expiry) is closed."""

        def decide(decision: Decision, wallet: Wallet) -> Reservation:
            current = decision.facts.reservation(command.reservation_id)
            if current.status != "reserved":
                raise errors.ReservationClosed()
            held = wallet.extend(command.reservation_id, command.ttl, at=self.now(decision.now))
            return replace(current, expires_at=held.expires_at, max_expires_at=held.max_expires_at)

        return await self._on_reservation(command.reservation_id, decide, metadata)

    async def capture(self, command: Capture, *, metadata: dict[str, Any]) -> Reservation:
        return await self._settle(command.reservation_id, command.amount, late=False, metadata=metadata)

    async def settle(self, command: Settle, *, metadata: dict[str, Any]) -> Reservation:
        """An execution's settlement: capture its reservation or, when the reservation expired
        first, charge it anyway (``Wallet.charge_expired``): the work was done."""
        return await self._settle(command.reservation_id, command.amount, late=True, metadata=metadata)

    async def _settle(
        self, reservation_id: UUID, amount: int, *, late: bool, metadata: dict[str, Any]
    ) -> Reservation:
        def decide(decision: Decision, wallet: Wallet) -> Reservation:
            current = decision.facts.reservation(reservation_id)
            if current.status == "captured":
                settled = (current.captured or 0) + (current.uncollected or 0)
                wallet.check_repeated_settlement(amount, reserved=current.amount, settled=settled)
                return current  # a retried capture answers what the first one did
            now = self.now(decision.now)
            if late and current.status == "expired":
                charge = wallet.charge_expired(
                    reservation_id, amount, reference_id=current.reference_id, reserved=current.amount, at=now
                )
                return replace(
                    current,
                    status="captured",
                    captured=charge.charged,
                    overrun=charge.overrun,
                    uncollected=charge.uncollected,
                )
            if current.status != "reserved":
                raise errors.ReservationClosed()
            result = wallet.capture(reservation_id, amount, at=now)
            return replace(current, status="captured", captured=result.captured, overrun=result.overrun)

        return await self._on_reservation(reservation_id, decide, metadata)

    async def release(self, command: Release, *, metadata: dict[str, Any]) -> Reservation:
        def decide(decision: Decision, wallet: Wallet) -> Reservation:
            current = decision.facts.reservation(command.reservation_id)
            if current.status == "captured":
                raise errors.ReservationAlreadyCaptured()
            if current.status != "reserved":
                return current  # released or expired already: releasing again changes nothing
            wallet.release(command.reservation_id, reason=command.reason, at=self.now(decision.now))
            return replace(current, status="released")

        return await self._on_reservation(command.reservation_id, decide, metadata)

    async def _on_reservation(
        self,
        reservation_id: UUID,
        decide: Callable[[Decision, Wallet], Reservation],
        metadata: dict[str, Any],
    ) -> Reservation:
        """A command on one reservation, on its wallet's stream."""
        result: Reservation = await self.commands.submit(
            Command(
                REPOSITORY,
                self._on_wallet_of(reservation_id),
                decide,
                metadata,
                new=no_wallet,
                facts=facts.needs(reservations=[reservation_id]),
            )
        )
        self._remember_owner(reservation_id, result.lenser_id)
        return result

    async def expire_due(self, *, limit: int = 200) -> int:
        """Release reservations past their expiry; returns how many. Safe on every replica."""
        async with self.commands.connection() as conn:
            now = self.now(await conn.fetchval("SELECT now()"))
            owners = await queries.owners_with_reservations_due(conn, now, limit=limit)
        metadata = {"actor": "wallet:expiry"}
        expired = 0
        for owner in owners:
            # Alone: it closes reservations other commands of a batch may have read as open.
            expired += await self.commands.submit(
                Command(REPOSITORY, owner, self._expire, metadata, new=no_wallet, alone=True)
            )
        return expired

    def _expire(self, decision: Decision, wallet: Wallet) -> int:
        return len(wallet.expire_due(self.now(decision.now)))

    # --- credits in and out: the first one opens the wallet -------------------------------

    async def grant(self, command: Grant, *, metadata: dict[str, Any]) -> bool:
        """Grant promotional credits once per key; returns whether this call granted them."""
        key = ("grant", command.idempotency_key)

        def decide(decision: Decision, wallet: Wallet) -> bool:
            earlier = decision.facts.deposits.get(key)
            if earlier is not None:
                if earlier.amount != command.amount:
                    raise errors.IdempotencyConflict()
                return False
            now = self.now(decision.now)
            wallet.open_if_new(command.lenser_id, at=now)
            wallet.deposit(
                command.amount,
                source="grant",
                reference_id=command.idempotency_key,
                description=command.reason,
                at=now,
            )
            return True

        return await self.commands.submit(
            Command(
                REPOSITORY,
                command.lenser_id,
                decide,
                metadata,
                facts=facts.needs(command.lenser_id, deposits=[key]),
            )
        )

    async def credit_purchase(self, command: CreditPurchase, *, metadata: dict[str, Any]) -> bool:
        """Credit a paid order once, however often it is delivered. A test-mode order (no money
        moved) is credited only where test-mode payments are accepted; else it is recorded as
        refused (``PurchaseRefused``), once, for an operator to see."""
        lenser_id, order_id = command.lenser_id, command.order_id
        key = ("purchase", order_id)

        def decide(decision: Decision, wallet: Wallet) -> bool:
            found: Found = decision.facts
            if key in found.deposits:
                return False
            now = self.now(decision.now)
            wallet.open_if_new(lenser_id, at=now)
            if command.test_mode and not self.accept_test_mode_payments:
                if order_id not in found.refused:
                    wallet.refuse_purchase(order_id, command.credits, reason="test_mode", at=now)
                return False
            wallet.deposit(
                command.credits,
                source="purchase",
                reference_id=order_id,
                description=command.description,
                at=now,
            )
            return True

        return await self.commands.submit(
            Command(
                REPOSITORY,
                lenser_id,
                decide,
                metadata,
                facts=facts.needs(lenser_id, deposits=[key], refused=[order_id]),
            )
        )

    async def reverse_purchase(self, command: ReversePurchase, *, metadata: dict[str, Any]) -> None:
        """Take back a refunded order's credits up to the cumulative total; repeats change nothing."""
        key = ("purchase", command.order_id)

        def decide(decision: Decision, wallet: Wallet) -> None:
            now = self.now(decision.now)
            wallet.open_if_new(command.lenser_id, at=now)
            wallet.refund_purchase(
                command.order_id,
                command.credits_refunded_total,
                purchase=decision.facts.deposits.get(key),
                at=now,
            )

        await self.commands.submit(
            Command(
                REPOSITORY,
                command.lenser_id,
                decide,
                metadata,
                facts=facts.needs(command.lenser_id, deposits=[key]),
            )
        )

    # --- administration -------------------------------------------------------------------

    async def set_frozen(self, command: SetFrozen, *, metadata: dict[str, Any]) -> None:
        def decide(decision: Decision, wallet: Wallet) -> None:
            (wallet.freeze if command.frozen else wallet.unfreeze)(at=self.now(decision.now))

        await self.commands.submit(Command(REPOSITORY, command.lenser_id, decide, metadata, new=no_wallet))

    async def set_limits(self, command: SetLimits, *, metadata: dict[str, Any]) -> None:
        def decide(decision: Decision, wallet: Wallet) -> None:
            wallet.set_limits(daily=command.daily, monthly=command.monthly, at=self.now(decision.now))

        await self.commands.submit(Command(REPOSITORY, command.lenser_id, decide, metadata, new=no_wallet))
