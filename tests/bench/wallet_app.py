"""What the wallet benchmark drives of wallet-api, in one place: its schema, its repository and
read models, and the commands it times (grant, reserve, capture, release), each wrapped in a function
of its own over wallet-api's command dataclasses. wallet-api's use-case API is the part most likely
to change: adapting the benchmark to it is adapting this module.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from wallet_api.app import MIGRATIONS, SCHEMA
from wallet_api.application.queries import Reservation
from wallet_api.application.use_cases import REPOSITORY, Wallets
from wallet_api.domain.commands import Capture, Grant, Release, Reserve
from wallet_api.domain.events import EVENT_TYPES, CreditsReserved, ReservationReleased
from wallet_api.domain.wallet import Wallet
from wallet_api.projections import INLINE, LEDGER

__all__ = [
    "EVENT_TYPES",
    "INLINE",
    "LEDGER",
    "MIGRATIONS",
    "REPOSITORY",
    "SCHEMA",
    "CreditsReserved",
    "ReservationReleased",
    "Wallet",
    "Wallets",
]

DB = {"name": ""}  # the benchmark database's name, for CpuMeter (set by main)
META = {"actor": "bench", "requestId": "bench", "correlationId": "bench", "causationId": "bench"}
BIG_DEPOSIT = 10**12
GRANT = 10**9


def wallets_on(pool: asyncpg.Pool) -> Wallets:
    return Wallets(pool)


def pool_of(wallets: Wallets) -> asyncpg.Pool:
    return wallets.commands.pool


async def grant(wallets: Wallets, lenser_id: UUID, amount: int) -> None:
    await wallets.grant(Grant(lenser_id, amount, reason="bench", idempotency_key="bench"), metadata=META)


async def reserve(
    wallets: Wallets, lenser_id: UUID, amount: int, reference_id: str
) -> tuple[Reservation, bool]:
    """The reservation, and whether this call created it."""
    return await wallets.reserve(Reserve(lenser_id, amount, reference_id), metadata=META)


async def capture(wallets: Wallets, reservation_id: UUID, amount: int) -> Reservation:
    return await wallets.capture(Capture(reservation_id, amount), metadata=META)


async def release(wallets: Wallets, reservation_id: UUID) -> Reservation:
    return await wallets.release(Release(reservation_id), metadata=META)
