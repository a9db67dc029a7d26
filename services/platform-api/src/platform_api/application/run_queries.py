"""What the run routes read: the catalogue's read models (what a run will execute) and run status
(``runs``, ``run_artifacts``). Someone else's run is not found, like one that does not exist."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from platform_api.domain.definitions import LensDefinition, WorkflowDefinition

_VISIBLE = "(h.owner_id = $2 OR h.published)"


async def lens_for_run(pool: asyncpg.Pool, caller: UUID, lens_id: UUID) -> tuple[int, LensDefinition] | None:
    """The lens's latest version, if the caller may use it."""
    row = await pool.fetchrow(
        "SELECT v.version, v.definition FROM lenses h JOIN lens_versions v"
        f" ON v.lens_id = h.lens_id AND v.version = h.version WHERE h.lens_id = $1 AND {_VISIBLE}",
        lens_id,
        caller,
    )
    return (row["version"], LensDefinition.model_validate(row["definition"])) if row else None


async def workflow_for_run(
    pool: asyncpg.Pool, caller: UUID, workflow_id: UUID
) -> tuple[int, WorkflowDefinition] | None:
    row = await pool.fetchrow(
        "SELECT v.version, v.definition FROM workflows h JOIN workflow_versions v"
        " ON v.workflow_id = h.workflow_id AND v.version = h.version"
        f" WHERE h.workflow_id = $1 AND {_VISIBLE}",
        workflow_id,
        caller,
    )
    return (row["version"], WorkflowDefinition.model_validate(row["definition"])) if row else None


async def lens_versions(
    pool: asyncpg.Pool, pins: list[tuple[UUID, int]]
) -> dict[tuple[UUID, int], LensDefinition]:
    """The pinned lens versions a workflow version names (pinned when it was made: usable then)."""
    rows = await pool.fetch(
        "SELECT v.lens_id, v.version, v.definition FROM lens_versions v"
        " JOIN unnest($1::uuid[], $2::int[]) AS p(l, n) ON v.lens_id = p.l AND v.version = p.n",
        [lens_id for lens_id, _ in pins],
        [version for _, version in pins],
    )
    return {(r["lens_id"], r["version"]): LensDefinition.model_validate(r["definition"]) for r in rows}


async def workflow_versions(
    pool: asyncpg.Pool, pins: list[tuple[UUID, int]]
) -> dict[tuple[UUID, int], WorkflowDefinition]:
    """The pinned sub-workflow versions a workflow version names."""
    rows = await pool.fetch(
        "SELECT v.workflow_id, v.version, v.definition FROM workflow_versions v"
        " JOIN unnest($1::uuid[], $2::int[]) AS p(w, n) ON v.workflow_id = p.w AND v.version = p.n",
        [workflow_id for workflow_id, _ in pins],
        [version for _, version in pins],
    )
    return {
        (r["workflow_id"], r["version"]): WorkflowDefinition.model_validate(r["definition"]) for r in rows
    }


_RUN = "SELECT r.*, extract(epoch FROM (r.completed_at - r.started_at)) * 1000 AS latency FROM runs r"


async def run_status(pool: asyncpg.Pool, caller: UUID, run_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"{_RUN} WHERE r.run_id = $1 AND r.lenser_id = $2", run_id, caller)
    if row is None:
        return None
    artifacts = await pool.fetch(
        "SELECT * FROM run_artifacts WHERE run_id = $1 ORDER BY created_at, node_id", run_id
    )
    return _status(row, artifacts)


async def runs(
    pool: asyncpg.Pool, caller: UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The caller's runs, newest first, each with its artifacts."""
    rows = await pool.fetch(
        f"{_RUN} WHERE r.lenser_id = $1 ORDER BY r.created_at DESC, r.run_id LIMIT $2 OFFSET $3",
        caller,
        limit,
        offset,
    )
    total = await pool.fetchval("SELECT count(*) FROM runs WHERE lenser_id = $1", caller)
    artifacts = await pool.fetch(
        "SELECT * FROM run_artifacts WHERE run_id = ANY($1::uuid[]) ORDER BY created_at, node_id",
        [r["run_id"] for r in rows],
    )
    by_run: dict[UUID, list[asyncpg.Record]] = {}
    for artifact in artifacts:
        by_run.setdefault(artifact["run_id"], []).append(artifact)
    return [_status(r, by_run.get(r["run_id"], [])) for r in rows], total


def billing_status(funding_source: str, status: str, credit_cost: int | None) -> str | None:
    """``null`` until the run ends; then ``byok`` (the lenser's own key paid), ``charged`` (credits
    were spent) or ``free`` (nothing was)."""
    if status in ("queued", "running"):
        return None
    if funding_source.startswith("user_byok"):
        return "byok"
    return "charged" if credit_cost else "free"


def _status(row: asyncpg.Record, artifacts: list[asyncpg.Record]) -> dict[str, Any]:
    return {
        "id": row["run_id"],
        "requestId": row["request_id"],
        "status": row["status"],
        "kind": row["kind"],
        "lensId": row["lens_id"],
        "workflowId": row["workflow_id"],
        "version": row["version"],
        "fundingSource": row["funding_source"],
        "modelId": row["model_id"],
        "modelKey": row["model_id"],
        "providerKey": row["provider_key"],
        "startedAt": row["started_at"],
        "completedAt": row["completed_at"],
        "latencyMs": None if row["latency"] is None else int(row["latency"]),
        "tokenInput": row["token_input"],
        "tokenOutput": row["token_output"],
        "creditCost": row["credit_cost"],
        "billingStatus": billing_status(row["funding_source"], row["status"], row["credit_cost"]),
        "errorCode": row["error_code"],
        "errorMessage": row["error_message"],
        "cancelRequested": row["cancel_requested_at"] is not None,
        "createdAt": row["created_at"],
        "artifacts": [
            {
                "id": a["artifact_id"],
                "nodeId": a["node_id"],
                "artifactKind": a["artifact_kind"],
                "contentText": a["content_text"],
                "contentJson": a["content_json"],
                "isPrimaryOutput": a["is_primary_output"],
                "visibility": a["visibility"],
                "createdAt": a["created_at"],
            }
            for a in artifacts
        ],
    }
