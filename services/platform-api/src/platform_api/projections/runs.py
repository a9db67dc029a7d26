"""Run status, the read model of ``GET /v1/runs[/{runId}]``: ``runs`` (one row per run) and
``run_artifacts`` (one per completed node), inline as ``writes`` (pure folds composed into the
run command's one write statement), so a run is readable as soon as its POST has answered.

A command's events are one run's; they are folded first into one statement per table row: the
run's INSERT when the batch holds its ``RunQueued``, else one UPDATE that sets what changed and
adds the batch's tokens (the statements are CTEs of one statement and must not touch a row twice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection

RUN_TYPES = (
    "RunQueued",
    "RunStarted",
    "RunCompleted",
    "RunFailed",
    "RunCancelRequested",
    "RunCancelled",
    "RunTimedOut",
    "NodeCompleted",
    "NodeFailed",
    "NodeRetried",
    "NodeCancelled",
    "NodeTimedOut",
)

_COLUMNS = (
    "status",
    "started_at",
    "completed_at",
    "credit_cost",
    "model_id",
    "provider_key",
    "error_code",
    "error_message",
    "cancel_requested_at",
)


def artifact_id(run_id: str, node_id: str) -> str:
    """Stable: a node completes once, and a rebuild makes the same ids."""
    return str(uuid5(NAMESPACE_URL, f"lenserfight:run:{run_id}:artifact:{node_id}"))


def _fold(events: list[RecordedEvent]) -> dict[str, Any]:
    """What a batch of one run's events changes: the columns set, and the tokens added."""
    change: dict[str, Any] = {"token_input": 0, "token_output": 0}
    for event in events:
        data, at = event.data, event.recorded_at
        match event.type:
            case "RunStarted":
                change.update(status="running", started_at=at)
            case "RunCompleted" | "RunFailed" | "RunCancelled" | "RunTimedOut":
                change.update(status=data["status"], completed_at=at, credit_cost=data["spent_credits"])
                if event.type == "RunFailed":
                    change.update(error_code=data["error_code"], error_message=data["error_message"])
                elif event.type == "RunCancelled":
                    change.update(error_code=data["reason"], error_message=f"run cancelled: {data['reason']}")
                elif event.type == "RunTimedOut":
                    change.update(error_code="timed_out", error_message="the run passed its deadline")
            case "NodeCompleted":
                change["token_input"] += data["input_tokens"]
                change["token_output"] += data["output_tokens"]
                change.update(
                    credit_cost=data["spent_credits"], model_id=data["model"], provider_key=data["provider"]
                )
            case "RunCancelRequested":
                change["cancel_requested_at"] = at
            case "NodeFailed":
                change["credit_cost"] = data["spent_credits"]
            case "NodeCancelled" | "NodeTimedOut" | "NodeRetried":
                # A node stopped mid-execution is charged for what it used (its tokens with it).
                change["token_input"] += data.get("input_tokens") or 0
                change["token_output"] += data.get("output_tokens") or 0
                if data.get("spent_credits") is not None:
                    change["credit_cost"] = data["spent_credits"]
    return change


def _insert(queued: RecordedEvent, change: dict[str, Any], at: datetime) -> Statement:
    data = queued.data
    model = data.get("model_override") or (data["nodes"][0]["model_id"] if len(data["nodes"]) == 1 else None)
    return Statement(
        "INSERT INTO runs (run_id, lenser_id, kind, lens_id, workflow_id, version, funding_source,"
        " request_id, status, model_id, provider_key, started_at, completed_at, token_input,"
        " token_output, credit_cost, error_code, error_message, deadline_at, created_at, updated_at,"
        " cancel_requested_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
        " $19, $20, $21, $22)",
        (
            data["run_id"],
            data["lenser_id"],
            data["kind"],
            data.get("lens_id"),
            data.get("workflow_id"),
            data["version"],
            data["funding_source"],
            data["request_id"],
            change.get("status", "queued"),
            change.get("model_id", model),
            change.get("provider_key", data.get("provider_override")),
            change.get("started_at"),
            change.get("completed_at"),
            change["token_input"] or None,
            change["token_output"] or None,
            change.get("credit_cost"),
            change.get("error_code"),
            change.get("error_message"),
            datetime.fromisoformat(data["deadline_at"]) if data.get("deadline_at") else None,
            queued.recorded_at,
            at,
            change.get("cancel_requested_at"),
        ),
    )


def _update(run_id: str, change: dict[str, Any], at: datetime) -> Statement:
    sets = ", ".join(f"{column} = coalesce(${n}, {column})" for n, column in enumerate(_COLUMNS, start=2))
    return Statement(
        f"UPDATE runs SET {sets},"
        f" token_input = CASE WHEN ${len(_COLUMNS) + 2}::int > 0"
        f" THEN coalesce(token_input, 0) + ${len(_COLUMNS) + 2} ELSE token_input END,"
        f" token_output = CASE WHEN ${len(_COLUMNS) + 3}::int > 0"
        f" THEN coalesce(token_output, 0) + ${len(_COLUMNS) + 3} ELSE token_output END,"
        f" updated_at = ${len(_COLUMNS) + 4} WHERE run_id = $1",
        (run_id, *(change.get(c) for c in _COLUMNS), change["token_input"], change["token_output"], at),
    )


def _artifacts(completed: list[RecordedEvent]) -> Statement:
    return Statement(
        "INSERT INTO run_artifacts (artifact_id, run_id, node_id, artifact_kind, content_text,"
        " is_primary_output, visibility, created_at)"
        " SELECT a, r, n, 'text', c, p, 'private', t"
        " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bool[], $6::timestamptz[])"
        " AS x(a, r, n, c, p, t)",
        (
            [artifact_id(e.data["run_id"], e.data["node_id"]) for e in completed],
            [e.data["run_id"] for e in completed],
            [e.data["node_id"] for e in completed],
            [e.data["output"] for e in completed],
            [e.data["primary"] for e in completed],
            [e.recorded_at for e in completed],
        ),
    )


def run_writes(events: list[RecordedEvent]) -> list[Statement]:
    by_run: dict[str, list[RecordedEvent]] = {}
    for event in events:
        if event.type in RUN_TYPES:
            by_run.setdefault(event.data["run_id"], []).append(event)
    statements = []
    for run_id, its in by_run.items():
        change = _fold(its)
        queued = next((e for e in its if e.type == "RunQueued"), None)
        statements.append(
            _insert(queued, change, its[-1].recorded_at)
            if queued
            else _update(run_id, change, its[-1].recorded_at)
        )
        if completed := [e for e in its if e.type == "NodeCompleted"]:
            statements.append(_artifacts(completed))
    return statements


RUNS = Projection(name="runs", tables=("runs", "run_artifacts"), writes=run_writes, write_types=RUN_TYPES)
