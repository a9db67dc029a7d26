"""Commands on wallets, each in one PostgreSQL transaction.

Each runs as ``lf_eventstore.CommandRunner`` runs every command: lock the wallet's stream row, load
the aggregate from its snapshot and later events, let it decide, append what it recorded, and apply
the inline projections in the same transaction. Idempotency keys (reference ids, order ids, grant keys) are
looked up in the inline read models *after* the lock is held, so a concurrent retry always sees the
first attempt's outcome.

The time of a command is the database's (``database_clock``: its transaction time), never the
replica's: spending windows (UTC day, month) and expiry then agree across replicas whose clocks drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg

from lf_eventstore import AggregateRepository, CommandRunner
from wallet_api.domain import errors
from wallet_api.domain.wallet import DEFAULT_RESERVATION_TTL, Wallet
from wallet_api.metrics import count_credits
from wallet_api.projections import INLINE

REPOSITORY = AggregateRepository(Wallet, "wallet", snapshot_every=50)

T = TypeVar("T")
Decision = Callable[[asyncpg.Connection, Wallet], Awaitable[T]]
Clock = Callable[[asyncpg.Connection], Awaitable[datetime]]
"""Where a command reads the time, on its own connection."""


async def database_clock(conn: asyncpg.Connection) -> datetime:
    """The command's transaction time (``now()``): one clock for every replica."""
    return await conn.fetchval("SELECT now()")


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: UUID
    lenser_id: UUID
    reference_id: str
    amount: int
    status: str
    expires_at: datetime
    captured: int | None = None
    overrun: int | None = None
    uncollected: int | None = None


class Wallets:
    """The wallet use cases, each one command on one wallet (``CommandRunner``): on the pool, or
    ``on(conn)`` inside a caller's transaction (message consumers, whose inbox row must commit
    together with the effect)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock = database_clock,
        *,
        accept_test_mode_payments: bool = False,
        commands: CommandRunner | None = None,
    ) -> None:
        self.commands = commands or CommandRunner(pool, INLINE, recorded=count_credits)
        self.now = clock
        self.accept_test_mode_payments = accept_test_mode_payments

    def on(self, conn: asyncpg.Connection) -> Wallets:
        return Wallets(
            self.commands.pool,
            self.now,
            accept_test_mode_payments=self.accept_test_mode_payments,
            commands=self.commands.on(conn),
        )

    async def _run(
        self,
        lenser: UUID | Callable[[asyncpg.Connection], Awaitable[UUID]],
        decide: Decision[T],
        *,
        metadata: dict[str, Any],
        may_open: bool = False,
    ) -> T:
        """``lenser`` is the wallet's owner, or how to find it (on the command's connection).
        ``may_open``: a first credit opens the wallet; every other command needs one."""

        async def on_wallet(conn: asyncpg.Connection, wallet: Wallet | None) -> tuple[Wallet, T]:
            if wallet is None:
                if not may_open or not isinstance(lenser, UUID):
                    raise errors.WalletNotFound()
                wallet = Wallet.open_for(lenser, await self.now(conn))
            return wallet, await decide(conn, wallet)

        return await self.commands.run(REPOSITORY, lenser, on_wallet, metadata=metadata)

    # --- reservations ---------------------------------------------------------------------

    async def reserve(
        self,
        lenser_id: UUID,
        amount: int,
        reference_id: str,
        *,
        ttl: timedelta = DEFAULT_RESERVATION_TTL,
        metadata: dict[str, Any],
    ) -> tuple[Reservation, bool]:
        """The reservation for ``reference_id`` and whether this call created it."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> tuple[Reservation, bool]:
            existing = await _reservation_by_reference(conn, lenser_id, reference_id)
            if existing is not None:
                if existing.amount != amount:
                    raise errors.IdempotencyConflict()
                return existing, False
            now = await self.now(conn)
            reservation_id = uuid4()
            wallet.reserve(reservation_id, amount, reference_id=reference_id, at=now, ttl=ttl)
            return Reservation(reservation_id, lenser_id, reference_id, amount, "reserved", now + ttl), True

        return await self._run(lenser_id, decide, metadata=metadata)

    async def capture(self, reservation_id: UUID, amount: int, *, metadata: dict[str, Any]) -> Reservation:
        return await self._settle(reservation_id, amount, late=False, metadata=metadata)

    async def settle(self, reservation_id: UUID, amount: int, *, metadata: dict[str, Any]) -> Reservation:
        """An execution's settlement: capture its reservation or, when the reservation expired
        first, charge it anyway (``Wallet.charge_expired``): the work was done."""
        return await self._settle(reservation_id, amount, late=True, metadata=metadata)

    async def _settle(
        self, reservation_id: UUID, amount: int, *, late: bool, metadata: dict[str, Any]
    ) -> Reservation:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> Reservation:
            current = await _reservation(conn, reservation_id)
            if current.status == "captured":
                settled = (current.captured or 0) + (current.uncollected or 0)
                if settled != min(amount, current.amount):
                    raise errors.IdempotencyConflict()
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

        return await self._run(partial(_owner_of, reservation_id=reservation_id), decide, metadata=metadata)

    async def release(
        self, reservation_id: UUID, *, reason: str = "released", metadata: dict[str, Any]
    ) -> Reservation:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> Reservation:
            current = await _reservation(conn, reservation_id)
            if current.status == "captured":
                raise errors.ReservationAlreadyCaptured()
            if current.status != "reserved":
                return current  # released or expired already: releasing again changes nothing
            wallet.release(reservation_id, reason=reason, at=await self.now(conn))
            return replace(current, status="released")

        return await self._run(partial(_owner_of, reservation_id=reservation_id), decide, metadata=metadata)

    async def expire_due(self, *, limit: int = 200) -> int:
        """Release reservations past their expiry; returns how many. Safe on every replica."""
        async with self.commands.connection() as conn:
            now = await self.now(conn)
            owners = await conn.fetch(
                "SELECT DISTINCT lenser_id FROM reservations WHERE status = 'reserved' AND expires_at <= $1"
                " LIMIT $2",
                now,
                limit,
            )
        expired = 0
        for row in owners:

            async def decide(conn: asyncpg.Connection, wallet: Wallet) -> int:
                return len(wallet.expire_due(await self.now(conn)))

            expired += await self._run(row["lenser_id"], decide, metadata={"actor": "wallet:expiry"})
        return expired

    # --- credits in and out ---------------------------------------------------------------

    async def grant(
        self, lenser_id: UUID, amount: int, *, reason: str, idempotency_key: str, metadata: dict[str, Any]
    ) -> bool:
        """Grant promotional credits once per key; returns whether this call granted them."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> bool:
            earlier = await _deposit(conn, lenser_id, "grant", idempotency_key)
            if earlier is not None:
                if earlier["amount"] != amount:
                    raise errors.IdempotencyConflict()
                return False
            wallet.deposit(
                amount,
                source="grant",
                reference_id=idempotency_key,
                description=reason,
                at=await self.now(conn),
            )
            return True

        return await self._run(lenser_id, decide, metadata=metadata, may_open=True)

    async def credit_purchase(
        self,
        lenser_id: UUID,
        order_id: str,
        credits: int,
        *,
        description: str,
        test_mode: bool = False,
        metadata: dict[str, Any],
    ) -> bool:
        """Credit a paid order once, however often it is delivered. A test-mode order (no money
        moved) is credited only where test-mode payments are accepted; else it is recorded as
        refused (``PurchaseRefused``), once, for an operator to see."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> bool:
            if await _deposit(conn, lenser_id, "purchase", order_id) is not None:
                return False
            now = await self.now(conn)
            if test_mode and not self.accept_test_mode_payments:
                if not await _refused(conn, lenser_id, order_id):
                    wallet.refuse_purchase(order_id, credits, reason="test_mode", at=now)
                return False
            wallet.deposit(credits, source="purchase", reference_id=order_id, description=description, at=now)
            return True

        return await self._run(lenser_id, decide, metadata=metadata, may_open=True)

    async def reverse_purchase(
        self, lenser_id: UUID, order_id: str, credits_refunded_total: int, *, metadata: dict[str, Any]
    ) -> None:
        """Take back a refunded order's credits up to the cumulative total; repeats change nothing."""

        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> None:
            order = await _deposit(conn, lenser_id, "purchase", order_id)
            now = await self.now(conn)
            if order is None:
                wallet.await_purchase_for_refund(order_id, credits_refunded_total, at=now)
            else:
                owed = min(credits_refunded_total, order["amount"]) - order["reversed"]
                wallet.reverse_purchase(order_id, owed, at=now)

        await self._run(lenser_id, decide, metadata=metadata, may_open=True)

    # --- administration -------------------------------------------------------------------

    async def set_frozen(self, lenser_id: UUID, frozen: bool, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> None:
            (wallet.freeze if frozen else wallet.unfreeze)(at=await self.now(conn))

        await self._run(lenser_id, decide, metadata=metadata)

    async def set_limits(
        self, lenser_id: UUID, *, daily: int | None, monthly: int | None, metadata: dict[str, Any]
    ) -> None:
        async def decide(conn: asyncpg.Connection, wallet: Wallet) -> None:
            wallet.set_limits(daily=daily, monthly=monthly, at=await self.now(conn))

        await self._run(lenser_id, decide, metadata=metadata)


async def _owner_of(conn: asyncpg.Connection, *, reservation_id: UUID) -> UUID:
    owner = await conn.fetchval(
        "SELECT lenser_id FROM reservations WHERE reservation_id = $1", reservation_id
    )
    if owner is None:
        raise errors.ReservationNotFound()
    return owner


RESERVATION_COLUMNS = (
    "reservation_id, lenser_id, reference_id, amount, status, expires_at, captured, overrun, uncollected"
)


async def _reservation_by_reference(
    conn: asyncpg.Connection, lenser_id: UUID, reference_id: str
) -> Reservation | None:
    row = await conn.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE lenser_id = $1 AND reference_id = $2",
        lenser_id,
        reference_id,
    )
    return Reservation(**dict(row)) if row else None


async def _reservation(conn: asyncpg.Connection, reservation_id: UUID) -> Reservation:
    row = await conn.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE reservation_id = $1", reservation_id
    )
    return Reservation(**dict(row))


async def _deposit(
    conn: asyncpg.Connection, lenser_id: UUID, source: str, reference_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT amount, reversed FROM deposits WHERE lenser_id = $1 AND source = $2 AND reference_id = $3",
        lenser_id,
        source,
        reference_id,
    )


async def _refused(conn: asyncpg.Connection, lenser_id: UUID, order_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM refused_purchases WHERE lenser_id = $1 AND order_id = $2)",
        lenser_id,
        order_id,
    )
