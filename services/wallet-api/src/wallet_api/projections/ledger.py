"""The double-entry ledger and the transaction list, followed asynchronously from the log.

Each event that moves credits becomes postings that sum to zero, so the sum of every posting in the
ledger is zero at all times (the trial balance) and a user's balance is the sum of their accounts.
Credits enter from the payment provider or the promotions budget and leave as platform revenue.
A settlement charged after its reservation expired earns its revenue in full: what the balance
could not cover is owed, on the lenser's ``uncollected:<id>`` account (not a ``user:`` account: a
user's balance stays the sum of their ``user:`` accounts, never below zero).
"""

from __future__ import annotations

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection

PAYMENTS = "external:lemonsqueezy"
PROMOTIONS = "platform:promotions"
REVENUE = "platform:revenue"


def available(lenser_id: str) -> str:
    return f"user:{lenser_id}:available"


def reserved(lenser_id: str) -> str:
    return f"user:{lenser_id}:reserved"


def uncollected(lenser_id: str) -> str:
    return f"uncollected:{lenser_id}"


UNCOLLECTED_PREFIX = uncollected("")


def postings(event: RecordedEvent) -> list[tuple[str, int]]:
    d = event.data
    user = d["lenser_id"]
    match event.type:
        case "CreditsDeposited":
            source = PAYMENTS if d["source"] == "purchase" else PROMOTIONS
            lines = [(source, -d["amount"]), (available(user), d["amount"])]
        case "CreditsReserved":
            lines = [(available(user), -d["amount"]), (reserved(user), d["amount"])]
        case "ReservationCaptured":
            lines = [
                (reserved(user), -d["reserved"]),
                (REVENUE, d["captured"]),
                (available(user), d["released"]),
            ]
        case "ExpiredReservationCharged":
            lines = [
                (available(user), -d["charged"]),
                (uncollected(user), -d["uncollected"]),
                (REVENUE, d["charged"] + d["uncollected"]),
            ]
        case "ReservationReleased":
            lines = [(reserved(user), -d["amount"]), (available(user), d["amount"])]
        case "PurchaseReversed":
            lines = [(available(user), -d["amount"]), (PAYMENTS, d["amount"])]
        case _:
            lines = []
    return [(account, amount) for account, amount in lines if amount != 0]


def transaction(event: RecordedEvent) -> tuple[str, int, int, str, str, str] | None:
    """(tx_type, amount, direction, description, reference_type, reference_id) if the balance moved."""
    d = event.data
    match event.type:
        case "CreditsDeposited":
            kind = "order" if d["source"] == "purchase" else "grant"
            return ("deposit", d["amount"], 1, d["description"], kind, d["reference_id"])
        case "ReservationCaptured" if d["captured"] > 0:
            return ("spend", d["captured"], -1, "AI execution", "execution", d["reference_id"])
        case "ExpiredReservationCharged" if d["charged"] > 0:
            description = "AI execution (settled after its reservation expired)"
            return ("spend", d["charged"], -1, description, "execution", d["reference_id"])
        case "PurchaseReversed" if d["amount"] > 0:
            return ("refund", d["amount"], -1, "Order refunded", "order", d["order_id"])
    return None


INSERT_POSTING = (
    "INSERT INTO ledger_postings (event_id, line, position, account, amount, recorded_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
INSERT_TRANSACTION = (
    "INSERT INTO transactions (id, lenser_id, position, tx_type, amount, direction, balance_after,"
    " description, reference_type, reference_id, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)


async def record(conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
    """All the batch's postings in one statement, all its transactions in another."""
    posting_rows = [
        (event.event_id, line, event.position, account, amount, event.recorded_at)
        for event in events
        for line, (account, amount) in enumerate(postings(event))
    ]
    transaction_rows = [
        (
            event.event_id,
            event.data["lenser_id"],
            event.position,
            *row[:3],
            event.data["balance_after"],
            *row[3:],
            event.recorded_at,
        )
        for event in events
        if (row := transaction(event)) is not None
    ]
    if posting_rows:
        await conn.executemany(INSERT_POSTING, posting_rows)
    if transaction_rows:
        await conn.executemany(INSERT_TRANSACTION, transaction_rows)


PROJECTION = Projection(
    name="ledger",
    followed=True,  # by its own runner (app.py); a rebuild hands it its checkpoint
    tables=("ledger_postings", "transactions"),
    batch=record,
    batch_types=(
        "CreditsDeposited",
        "CreditsReserved",
        "ReservationCaptured",
        "ReservationReleased",
        "ExpiredReservationCharged",
        "PurchaseReversed",
    ),
)
