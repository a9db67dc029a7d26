"""One row per wallet: the figures GET /wallet/balance answers with.

A fold (``writes``): whatever the events, one row per wallet written once. A wallet opened in the
batch is inserted with everything after its opening already summed in; every other wallet is
updated by the sum of its deltas, the last frozen state and the last limits the batch set, and the
time of its last event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection
from lf_projections.rows import insert_rows, update_rows

FIGURES = ("balance", "reserved", "lifetime_deposits", "lifetime_spent")


def deltas(event: RecordedEvent) -> dict[str, int]:
    """What ``event`` adds to each figure (none for an event that moves no credits)."""
    d = event.data
    match event.type:
        case "CreditsDeposited":
            return {"balance": d["amount"], "lifetime_deposits": d["amount"]}
        case "CreditsReserved":
            return {"reserved": d["amount"]}
        case "ReservationCaptured":
            return {"reserved": -d["reserved"], "balance": -d["captured"], "lifetime_spent": d["captured"]}
        case "ExpiredReservationCharged":
            return {"balance": -d["charged"], "lifetime_spent": d["charged"]}
        case "ReservationReleased":
            return {"reserved": -d["amount"]}
        case "PurchaseReversed":
            return {"balance": -d["amount"]}
    return {}


TYPES = (
    "WalletOpened",
    "CreditsDeposited",
    "CreditsReserved",
    "ReservationCaptured",
    "ExpiredReservationCharged",
    "ReservationReleased",
    "PurchaseReversed",
    "WalletFrozen",
    "WalletUnfrozen",
    "SpendingLimitsSet",
)


@dataclass
class Wallet:
    """One wallet's effect of the batch."""

    lenser_id: Any
    updated_at: datetime
    opened_at: datetime | None = None  # opened in this batch: inserted, not updated
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    frozen: bool | None = None  # None: the batch did not say
    limits: tuple[int | None, int | None] | None = None  # (daily, monthly); None: the batch did not say


def fold(events: list[RecordedEvent]) -> dict[str, Wallet]:
    wallets: dict[str, Wallet] = {}
    for event in events:
        if event.type not in TYPES:
            continue
        lenser_id = event.data["lenser_id"]
        wallet = wallets.setdefault(str(lenser_id), Wallet(lenser_id, event.recorded_at))
        wallet.updated_at = event.recorded_at
        for figure, amount in deltas(event).items():
            wallet.sums[figure] += amount
        match event.type:
            case "WalletOpened":
                wallet.opened_at = event.recorded_at
            case "WalletFrozen":
                wallet.frozen = True
            case "WalletUnfrozen":
                wallet.frozen = False
            case "SpendingLimitsSet":
                wallet.limits = (event.data["daily"], event.data["monthly"])
    return wallets


ROW = [
    ("balance", "bigint"),
    ("reserved", "bigint"),
    ("lifetime_deposits", "bigint"),
    ("lifetime_spent", "bigint"),
    ("frozen", "boolean"),
    ("daily_limit", "bigint"),
    ("monthly_limit", "bigint"),
    ("updated_at", "timestamptz"),
]
KEY = [("lenser_id", "uuid")]


def writes(events: list[RecordedEvent]) -> list[Statement]:
    opened: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    for wallet in fold(events).values():
        sums = tuple(wallet.sums[figure] for figure in FIGURES)
        daily, monthly = wallet.limits or (None, None)
        if wallet.opened_at is not None:
            row = (wallet.lenser_id, *sums, bool(wallet.frozen), daily, monthly, wallet.updated_at)
            opened.append((*row, wallet.opened_at))
        else:
            row = (wallet.lenser_id, *sums, wallet.frozen, daily, monthly, wallet.updated_at)
            changed.append((*row, wallet.limits is not None))
    return [
        *insert_rows("balances", [*KEY, *ROW, ("opened_at", "timestamptz")], opened),
        *update_rows(
            "balances",
            KEY,
            ROW,
            changed,
            assign={
                **{figure: f"t.{figure} + r.{figure}" for figure in FIGURES},
                "frozen": "coalesce(r.frozen, t.frozen)",
                "daily_limit": "CASE WHEN r.limits_set THEN r.daily_limit ELSE t.daily_limit END",
                "monthly_limit": "CASE WHEN r.limits_set THEN r.monthly_limit ELSE t.monthly_limit END",
            },
            extra=[("limits_set", "boolean")],
        ),
    ]


PROJECTION = Projection(name="balances", tables=("balances",), writes=writes, write_types=TYPES)
