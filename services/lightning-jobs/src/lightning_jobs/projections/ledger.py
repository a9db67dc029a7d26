"""The sats ledger: every sat in and out of the platform as balanced double-entry postings, inline.

Sats arrive from Lightning (``external:lightning``) and are held against their job until its step
is done; then they are earned (``platform:revenue:eval``, ``platform:revenue:work``) or owed back
(``job:<id>:refund_owed``), and a paid refund leaves to Lightning again. Each event's lines sum to
zero, so every posting together does (the trial balance); a finished job's ``held`` account is
zero, and its ``refund_owed`` is zero once the refund is paid.
"""

from __future__ import annotations

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection

LIGHTNING = "external:lightning"
EVAL_REVENUE = "platform:revenue:eval"
WORK_REVENUE = "platform:revenue:work"


def held(job_id: str) -> str:
    return f"job:{job_id}:held"


def refund_owed(job_id: str) -> str:
    return f"job:{job_id}:refund_owed"


def session_balance(session_id: str) -> str:
    return f"session:{session_id}:balance"


def session_owed(session_id: str) -> str:
    return f"session:{session_id}:refund_owed"


def l402_held(token_id: str) -> str:
    return f"l402:{token_id}:held"


def owner(event: RecordedEvent) -> str:
    """The job, session or L402 token the posting is of (the ``job_id`` column holds any: all are
    uuids)."""
    d = event.data
    return str(d.get("job_id") or d.get("session_id") or d["token_id"])


def postings(event: RecordedEvent) -> list[tuple[str, int]]:
    d = event.data
    job = str(d.get("job_id"))
    match event.type:
        # Sessions: a deposit or top-up is the session's balance; a request's debit is earned; an
        # expired session's balance is owed back.
        case "DepositPaid":
            lines = [(LIGHTNING, -d["amount_sats"]), (session_balance(owner(event)), d["amount_sats"])]
        case "RequestSettled":
            lines = [
                (session_balance(owner(event)), -(d["eval_sats"] + d["work_sats"])),
                (EVAL_REVENUE, d["eval_sats"]),
                (WORK_REVENUE, d["work_sats"]),
            ]
        case "SessionExpired":
            lines = [
                (session_balance(owner(event)), -d["owed_sats"]),
                (session_owed(owner(event)), d["owed_sats"]),
            ]
        case "SessionRefundPaid":
            lines = [(session_owed(owner(event)), -d["amount_sats"]), (LIGHTNING, d["amount_sats"])]
        # L402: the price is held when the paid token is first presented, earned when answered.
        case "L402Paid":
            lines = [(LIGHTNING, -d["amount_sats"]), (l402_held(owner(event)), d["amount_sats"])]
        case "L402Answered":
            lines = [
                (l402_held(owner(event)), -d["amount_sats"]),
                (EVAL_REVENUE, d["eval_fee_sats"]),
                (WORK_REVENUE, d["amount_sats"] - d["eval_fee_sats"]),
            ]
        case "EvalPaid" | "WorkPaid":
            lines = [(LIGHTNING, -d["amount_sats"]), (held(job), d["amount_sats"])]
        case "JobRejected" | "WorkInvoiced":  # the evaluation is done: its fee is earned
            lines = [(held(job), -d["eval_fee_sats"]), (EVAL_REVENUE, d["eval_fee_sats"])]
        case "JobCompleted":
            lines = [
                (held(job), -d["work_amount_sats"]),
                (WORK_REVENUE, d["actual_amount_sats"]),
                (refund_owed(job), d["refund_amount_sats"]),
            ]
        case "JobFailed":
            lines = [(held(job), -d["refund_amount_sats"]), (refund_owed(job), d["refund_amount_sats"])]
        case "RefundPaid":
            lines = [(refund_owed(job), -d["amount_sats"]), (LIGHTNING, d["amount_sats"])]
        case _:
            lines = []
    return [(account, amount) for account, amount in lines if amount != 0]


LEDGER_TYPES = (
    "EvalPaid",
    "WorkPaid",
    "JobRejected",
    "WorkInvoiced",
    "JobCompleted",
    "JobFailed",
    "RefundPaid",
    "DepositPaid",
    "RequestSettled",
    "SessionExpired",
    "SessionRefundPaid",
    "L402Paid",
    "L402Answered",
)


def ledger_writes(events: list[RecordedEvent]) -> list[Statement]:
    """All the batch's postings in one statement."""
    rows = [
        (str(event.event_id), line, owner(event), account, amount, event.recorded_at)
        for event in events
        for line, (account, amount) in enumerate(postings(event))
    ]
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    return [
        Statement(
            "INSERT INTO ledger_postings (event_id, line, job_id, account, amount, recorded_at)"
            " SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::uuid[], $4::text[], $5::bigint[],"
            " $6::timestamptz[])",
            tuple(list(column) for column in columns),
        )
    ]


LEDGER = Projection(
    name="ledger", tables=("ledger_postings",), writes=ledger_writes, write_types=LEDGER_TYPES
)
