"""What a wallet command reads besides its wallet: the reservation it settles, the reservation a
retry made already, the deposit an idempotency key made.

A command names these up front (``needs``) so that they are read in the command's one read, after
its wallet's stream is locked (migrations/0005 ``command_facts``, run by lf_eventstore's
``command_load``), and so that commands on one wallet naming different facts can be decided in one
batch while two naming the same one never are (lf_eventstore.commands).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from lf_eventstore import Facts, KeyLookup
from wallet_api.application.queries import Reservation
from wallet_api.domain import errors
from wallet_api.domain.wallet import Deposit

SQL = "SELECT command_facts($1)"

OWNER = KeyLookup(
    "SELECT lenser_id::text FROM reservations WHERE reservation_id = ($1 -> 'reservations' ->> 0)::uuid",
    missing=errors.ReservationNotFound,
)
"""The wallet of the reservation a command names, for a replica that has not seen it yet."""


@dataclass(frozen=True, slots=True)
class Found:
    """The facts a batch of commands named, as its commands read them."""

    reservations: dict[UUID, Reservation] = field(default_factory=dict)
    by_reference: dict[str, Reservation] = field(default_factory=dict)
    deposits: dict[tuple[str, str], Deposit] = field(default_factory=dict)
    refused: frozenset[str] = frozenset()

    def reservation(self, reservation_id: UUID) -> Reservation:
        found = self.reservations.get(reservation_id)
        if found is None:
            raise errors.ReservationNotFound()
        return found


def needs(
    lenser_id: UUID | None = None,
    *,
    reservations: Iterable[UUID] = (),
    references: Iterable[str] = (),
    deposits: Iterable[tuple[str, str]] = (),
    refused: Iterable[str] = (),
) -> Facts:
    named: dict[str, Any] = {"lenser_id": str(lenser_id)} if lenser_id else {}
    for name, keys in (
        ("reservations", [str(r) for r in reservations]),
        ("references", list(references)),
        ("deposits", [list(d) for d in deposits]),
        ("refused", list(refused)),
    ):
        if keys:
            named[name] = keys
    return Facts(SQL, named, parse=parse)


def parse(found: dict[str, Any]) -> Found:
    return Found(
        reservations={r.reservation_id: r for r in map(_reservation, found["reservations"])},
        by_reference={r.reference_id: r for r in map(_reservation, found["references"])},
        deposits={
            (source, key): Deposit(amount, reversed_) for source, key, amount, reversed_ in found["deposits"]
        },
        refused=frozenset(found["refused"]),
    )


def _reservation(row: dict[str, Any]) -> Reservation:
    return Reservation(
        UUID(row["reservation_id"]),
        UUID(row["lenser_id"]),
        row["reference_id"],
        row["amount"],
        row["status"],
        datetime.fromisoformat(row["expires_at"]),
        datetime.fromisoformat(row["max_expires_at"]),
        captured=row["captured"],
        overrun=row["overrun"],
        uncollected=row["uncollected"],
    )
