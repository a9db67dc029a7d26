"""The wallet use cases, each one command on one wallet, in one PostgreSQL transaction.

Each runs as ``lf_eventstore.CommandRunner`` runs every command: lock the wallet's stream row, load
the aggregate from its snapshot and later events, let it decide, append what it recorded, and apply
the inline projections in the same transaction. Idempotency keys (reference ids, order ids, grant
keys) are looked up in the inline read models (``queries``) *after* the lock is held, so a concurrent
retry always sees the first attempt's outcome. A first credit (a grant, a purchase, a refund) opens
the wallet; every other command refuses a wallet that does not exist.

The time of a command is the database's (``database_clock``: its transaction time), never the
replica's: spending windows (UTC day, month) and expiry then agree across replicas whose clocks drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from lf_eventstore import AggregateRepository, CommandRunner, UseCases
from wallet_api.application import queries
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

Clock = Callable[[asyncpg.Connection], Awaitable[datetime]]
"""Where a command reads the time, on its own connection."""


async def database_clock(conn: asyncpg.Connection) -> datetime:
    """The command's transaction time (``now()``): one clock for every replica."""
    return await conn.fetchval("SELECT now()")


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
    ) -> None:
        super().__init__(CommandRunner(pool, INLINE, recorded=count_credits))
        self.now = clock
        self.accept_test_mode_payments = accept_test_mode_payments
        self.reservation_max_lifetime = reservation_max_lifetime

    # --- reservations ---------------------------------------------------------------------

    async def reserve(self, command: Reserve, *, metadata: dict[str, Any]) -> tuple[Reservation, bool]:
        """The reservation for the command's reference id and whether this call created it, with
        the wallet's available credits right after it (for a retry: as they are now)."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> tuple[Reservation, bool]:
            existing = await queries.reservation_by_reference(conn, command.lenser_id, command.reference_id)
            if existing is not None:
                if existing.amount != command.amount:
                    raise errors.IdempotencyConflict()
                return replace(existing, available_balance=wallet.available), False
            now, reservation_id = await self.now(conn), uuid4()
            held = wallet.reserve(
                reservation_id,
                command.amount,
                reference_id=command.reference_id,
                at=now,
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

        return await self.commands.run(
            REPOSITORY, command.lenser_id, decide, new=no_wallet, metadata=metadata
        )

    async def extend(self, command: Extend, *, metadata: dict[str, Any]) -> Reservation:
        """Move an open reservation's expiry to now + ttl, never past its hard deadline nor earlier
        than it is; a reservation no longer ``reserved`` (or already past its expiry) is closed."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> Reservation:
            current = await queries.reservation(conn, command.reservation_id)
            if current.status != "reserved":
                raise errors.ReservationClosed()
            held = wallet.extend(command.reservation_id, command.ttl, at=await self.now(conn))
            return replace(current, expires_at=held.expires_at, max_expires_at=held.max_expires_at)

        owner = partial(queries.owner_of, reservation_id=command.reservation_id)
        return await self.commands.run(REPOSITORY, owner, decide, new=no_wallet, metadata=metadata)

    async def capture(self, command: Capture, *, metadata: dict[str, Any]) -> Reservation:
        return await self._settle(command.reservation_id, command.amount, late=False, metadata=metadata)

    async def settle(self, command: Settle, *, metadata: dict[str, Any]) -> Reservation:
        """An execution's settlement: capture its reservation or, when the reservation expired
        first, charge it anyway (``Wallet.charge_expired``): the work was done."""
        return await self._settle(command.reservation_id, command.amount, late=True, metadata=metadata)

    async def _settle(
        self, reservation_id: UUID, amount: int, *, late: bool, metadata: dict[str, Any]
    ) -> Reservation:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> Reservation:
            current = await queries.reservation(conn, reservation_id)
            if current.status == "captured":
                settled = (current.captured or 0) + (current.uncollected or 0)
                wallet.check_repeated_settlement(amount, reserved=current.amount, settled=settled)
                return current  # a retried capture answers what the first one did
            now = await self.now(conn)
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

        owner = partial(queries.owner_of, reservation_id=reservation_id)
        return await self.commands.run(REPOSITORY, owner, decide, new=no_wallet, metadata=metadata)

    async def release(self, command: Release, *, metadata: dict[str, Any]) -> Reservation:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> Reservation:
            current = await queries.reservation(conn, command.reservation_id)
            if current.status == "captured":
                raise errors.ReservationAlreadyCaptured()
            if current.status != "reserved":
                return current  # released or expired already: releasing again changes nothing
            wallet.release(command.reservation_id, reason=command.reason, at=await self.now(conn))
            return replace(current, status="released")

        owner = partial(queries.owner_of, reservation_id=command.reservation_id)
        return await self.commands.run(REPOSITORY, owner, decide, new=no_wallet, metadata=metadata)

    async def expire_due(self, *, limit: int = 200) -> int:
        """Release reservations past their expiry; returns how many. Safe on every replica."""
        async with self.commands.connection() as conn:
            owners = await queries.owners_with_reservations_due(conn, await self.now(conn), limit=limit)
        metadata = {"actor": "wallet:expiry"}
        expired = 0
        for owner in owners:
            expired += await self.commands.run(
                REPOSITORY, owner, self._expire, new=no_wallet, metadata=metadata
            )
        return expired

    async def _expire(self, conn: asyncpg.Connection, wallet: Wallet) -> int:
        return len(wallet.expire_due(await self.now(conn)))

    # --- credits in and out: the first one opens the wallet -------------------------------

    async def grant(self, command: Grant, *, metadata: dict[str, Any]) -> bool:
        """Grant promotional credits once per key; returns whether this call granted them."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> bool:
            earlier = await queries.deposit(conn, command.lenser_id, "grant", command.idempotency_key)
            if earlier is not None:
                if earlier.amount != command.amount:
                    raise errors.IdempotencyConflict()
                return False
            now = await self.now(conn)
            wallet.open_if_new(command.lenser_id, at=now)
            wallet.deposit(
                command.amount,
                source="grant",
                reference_id=command.idempotency_key,
                description=command.reason,
                at=now,
            )
            return True

        return await self.commands.run(REPOSITORY, command.lenser_id, decide, metadata=metadata)

    async def credit_purchase(self, command: CreditPurchase, *, metadata: dict[str, Any]) -> bool:
        """Credit a paid order once, however often it is delivered. A test-mode order (no money
        moved) is credited only where test-mode payments are accepted; else it is recorded as
        refused (``PurchaseRefused``), once, for an operator to see."""
        lenser_id, order_id = command.lenser_id, command.order_id

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> bool:
            if await queries.deposit(conn, lenser_id, "purchase", order_id) is not None:
                return False
            now = await self.now(conn)
            wallet.open_if_new(lenser_id, at=now)
            if command.test_mode and not self.accept_test_mode_payments:
                if not await queries.refused(conn, lenser_id, order_id):
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

        return await self.commands.run(REPOSITORY, lenser_id, decide, metadata=metadata)

    async def reverse_purchase(self, command: ReversePurchase, *, metadata: dict[str, Any]) -> None:
        """Take back a refunded order's credits up to the cumulative total; repeats change nothing."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> None:
            purchase = await queries.deposit(conn, command.lenser_id, "purchase", command.order_id)
            now = await self.now(conn)
            wallet.open_if_new(command.lenser_id, at=now)
            wallet.refund_purchase(
                command.order_id, command.credits_refunded_total, purchase=purchase, at=now
            )

        await self.commands.run(REPOSITORY, command.lenser_id, decide, metadata=metadata)

    # --- administration -------------------------------------------------------------------

    async def set_frozen(self, command: SetFrozen, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> None:
            (wallet.freeze if command.frozen else wallet.unfreeze)(at=await self.now(conn))

        await self.commands.run(REPOSITORY, command.lenser_id, decide, new=no_wallet, metadata=metadata)

    async def set_limits(self, command: SetLimits, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> None:
            wallet.set_limits(daily=command.daily, monthly=command.monthly, at=await self.now(conn))

        await self.commands.run(REPOSITORY, command.lenser_id, decide, new=no_wallet, metadata=metadata)
