"""Job status, the read model of ``GET /api/jobs/{id}`` and of the invoice watcher: one row per
job, inline as ``writes``. A command's events are one job's; they are folded into one statement
(the job's INSERT when the batch holds its ``JobCreated``, else one UPDATE of what changed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection

JOB_TYPES = (
    "JobCreated",
    "EvalPaid",
    "StepClaimed",
    "JobRejected",
    "WorkInvoiced",
    "WorkPaid",
    "JobCompleted",
    "JobFailed",
    "RefundClaimed",
    "RefundPaid",
    "RefundPaymentFailed",
)

# The refund's lifecycle as seed 002 names it (``refund_state``): a claim being paid is still
# ``pending``; ``refund_claimed_at`` tells a claim being paid from none.


def _fold(events: list[RecordedEvent]) -> dict[str, Any]:
    change: dict[str, Any] = {}
    for event in events:
        data, at = event.data, event.recorded_at
        match event.type:
            case "JobCreated":
                change.update(
                    state="awaiting_eval_payment",
                    request=data["request"],
                    eval_payment_hash=data["eval_payment_hash"],
                    eval_invoice=data["eval_invoice"],
                    eval_amount_sats=data["eval_amount_sats"],
                    created_at=at,
                )
            case "EvalPaid":
                change["state"] = "evaluating"
            case "StepClaimed":
                change["step_lease_until"] = _moment(data["lease_until"])
            case "JobRejected":
                change.update(state="rejected", reason=data["reason"], completed_at=at)
            case "WorkInvoiced":
                change.update(
                    state="awaiting_work_payment",
                    reason=data["reason"],
                    work_payment_hash=data["work_payment_hash"],
                    work_invoice=data["work_invoice"],
                    work_amount_sats=data["work_amount_sats"],
                    pricing=(
                        {
                            "estimatedCostUsd": data["estimated_cost_usd"],
                            "marginPct": data["margin_pct"],
                            "btcPriceUsd": data["btc_price_usd"],
                            "btcPriceSource": data["btc_price_source"],
                            # The model the work runs on, locked with the price (None: an event
                            # from before it was recorded; the work then runs on WORK_MODEL).
                            "workModel": data.get("work_model"),
                            "workProvider": data.get("work_provider"),
                        }
                    ),
                )
            case "WorkPaid":
                change["state"] = "executing"
            case "JobCompleted":
                refund = data["refund_amount_sats"]
                change.update(
                    state="complete",
                    result=data["result"],
                    completed_at=at,
                    refund_amount_sats=refund,
                    refund_state="pending" if refund > 0 else "not_applicable",
                    cost_ledger=(
                        {
                            "actualInputTokens": data["input_tokens"],
                            "actualOutputTokens": data["output_tokens"],
                            "actualCostUsd": data["actual_cost_usd"],
                            "actualChargeUsd": data["actual_charge_usd"],
                            "actualAmountSats": data["actual_amount_sats"],
                            "workAmountSats": data["work_amount_sats"],
                        }
                    ),
                )
            case "JobFailed":
                refund = data["refund_amount_sats"]
                change.update(
                    state="failed",
                    error_message=data["error_message"],
                    completed_at=at,
                    refund_amount_sats=refund,
                    refund_state="pending" if refund > 0 else "not_applicable",
                )
            case "RefundClaimed":
                change.update(
                    refund_state="pending", refund_payment_hash=data["payment_hash"], refund_claimed_at=at
                )
            case "RefundPaid":
                change.update(refund_state="paid", refund_claimed_at=None)
            case "RefundPaymentFailed":
                change.update(refund_state="pending", refund_payment_hash=None, refund_claimed_at=None)
    return change


def _moment(value: str | datetime) -> datetime:
    """A time as the event's data holds it (ISO text in the log, as the model wrote it)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _insert(job_id: str, change: dict[str, Any], at: Any) -> Statement:
    columns = ["job_id", *change, "updated_at"]
    values = [job_id, *change.values(), at]
    placeholders = ", ".join(_placeholder(column, n) for n, column in enumerate(columns, start=1))
    return Statement(f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({placeholders})", tuple(values))


def _update(job_id: str, change: dict[str, Any], at: Any) -> Statement:
    columns = [*change, "updated_at"]
    sets = ", ".join(f"{column} = {_placeholder(column, n)}" for n, column in enumerate(columns, start=2))
    return Statement(f"UPDATE jobs SET {sets} WHERE job_id = $1", (job_id, *change.values(), at))


def _placeholder(column: str, n: int) -> str:
    casts = {
        "pricing": "jsonb",
        "cost_ledger": "jsonb",
        "step_lease_until": "timestamptz",
        "refund_claimed_at": "timestamptz",
        "job_id": "uuid",
    }
    return f"${n}::{casts[column]}" if column in casts else f"${n}"


def job_writes(events: list[RecordedEvent]) -> list[Statement]:
    by_job: dict[str, list[RecordedEvent]] = {}
    for event in events:
        if event.type in JOB_TYPES:
            by_job.setdefault(str(event.data["job_id"]), []).append(event)
    statements = []
    for job_id, its in by_job.items():
        change = _fold(its)
        at = its[-1].recorded_at
        created = any(e.type == "JobCreated" for e in its)
        statements.append(_insert(job_id, change, at) if created else _update(job_id, change, at))
    return statements


JOBS = Projection(name="jobs", tables=("jobs",), writes=job_writes, write_types=JOB_TYPES)
