"""Session status, the read model of ``GET /api/sessions/{id}`` and of the session watcher: one
row per session, inline as ``writes`` (one statement per session a batch touches, its events folded)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection

SESSION_TYPES = (
    "SessionOpened",
    "DepositPaid",
    "TopupInvoiced",
    "RequestStarted",
    "RequestSettled",
    "SessionPaused",
    "SessionExpired",
    "SessionRefundClaimed",
    "SessionRefundPaid",
    "SessionRefundFailed",
)


def _fold(events: list[RecordedEvent]) -> tuple[dict[str, Any], int]:
    """One session's events folded into the columns they set and the balance's change (the
    statements of one batch must not touch a row twice). The aggregate allows a payment to be
    credited only to a session awaiting it or live, so a credit always leaves it ``active``."""
    change: dict[str, Any] = {}
    delta = 0
    opened = 0  # requests started less settled
    for event in events:
        d, at = event.data, event.recorded_at
        match event.type:
            case "SessionOpened":
                change.update(
                    state="awaiting_payment",
                    minimum_balance_sats=d["minimum_balance_sats"],
                    deposit_payment_hash=d["payment_hash"],
                    deposit_invoice=d["invoice"],
                    deposit_amount_sats=d["amount_sats"],
                    created_at=at,
                )
            case "DepositPaid":
                delta += d["amount_sats"]
                change.update(state="active", last_activity_at=at)
                if d["topup"]:
                    change.update(topup_payment_hash=None, topup_invoice=None, topup_amount_sats=None)
            case "TopupInvoiced":
                change.update(
                    topup_payment_hash=d["payment_hash"],
                    topup_invoice=d["invoice"],
                    topup_amount_sats=d["amount_sats"],
                )
            case "RequestStarted":
                change["last_activity_at"] = at
                opened += 1
                lease = _moment(d["lease_until"])
                change["leases_until"] = max(lease, change.get("leases_until") or lease)
            case "RequestSettled":
                delta -= d["eval_sats"] + d["work_sats"]
                change["last_activity_at"] = at
                opened -= 1
            case "SessionPaused":
                change["state"] = "paused"
            case "SessionExpired":
                change.update(
                    state="expired",
                    owed_sats=d["owed_sats"],
                    refund_state="pending" if d["owed_sats"] > 0 else "not_applicable",
                )
                delta = 0
                change["balance_zero"] = True
            case "SessionRefundClaimed":
                change.update(refund_payment_hash=d["payment_hash"], refund_claimed_at=at)
            case "SessionRefundPaid":
                change.update(refund_state="paid", refund_claimed_at=None)
            case "SessionRefundFailed":
                change.update(refund_payment_hash=None, refund_claimed_at=None)
    change["open_delta"] = opened
    return change, delta


def _moment(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _statement(session_id: str, events: list[RecordedEvent]) -> Statement:
    change, delta = _fold(events)
    at = events[-1].recorded_at
    zero = change.pop("balance_zero", False)
    open_delta = change.pop("open_delta")
    if any(e.type == "SessionOpened" for e in events):
        columns = ["session_id", *change, "balance_sats", "open_requests", "updated_at"]
        values = [session_id, *change.values(), 0 if zero else delta, open_delta, at]
        marks = ", ".join(f"${n}::uuid" if n == 1 else f"${n}" for n in range(1, len(columns) + 1))
        return Statement(f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({marks})", tuple(values))
    leases = change.pop("leases_until", None)
    sets = [f"{column} = ${n}" for n, column in enumerate(change, start=5)]
    balance = "$2" if zero else "balance_sats + $2"  # expired: $2 is 0, the balance owed back
    n = len(change) + 5
    sets += [
        f"balance_sats = {balance}",
        "open_requests = open_requests + $3",
        "leases_until = GREATEST(leases_until, $4::timestamptz)",
        f"updated_at = ${n}",
    ]
    return Statement(
        f"UPDATE sessions SET {', '.join(sets)} WHERE session_id = $1::uuid",
        (session_id, delta, open_delta, leases, *change.values(), at),
    )


def session_writes(events: list[RecordedEvent]) -> list[Statement]:
    by_session: dict[str, list[RecordedEvent]] = {}
    for event in events:
        if event.type in SESSION_TYPES:
            by_session.setdefault(str(event.data["session_id"]), []).append(event)
    return [_statement(session_id, its) for session_id, its in by_session.items()]


SESSIONS = Projection(name="sessions", tables=("sessions",), writes=session_writes, write_types=SESSION_TYPES)
