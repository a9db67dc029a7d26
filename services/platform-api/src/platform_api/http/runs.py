"""Runs: ``POST /v1/lenses/{lensId}/execute``, ``POST /v1/workflows/{workflowId}/run`` (202
``PlatformExecutionAccepted``), ``GET /v1/runs[/{runId}]`` (``PlatformRunStatus``) and
``POST /v1/runs/{runId}/cancel``. A lenser's Supabase JWT on each; someone else's run is 404.

Rate limits per lenser, shared by replicas (``lf_web.RateLimiter``): 100 lens executions and 60
workflow runs a minute.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

from aiohttp import web
from pydantic import Field

from lf_web import (
    PG_POOL,
    REQUEST_ID,
    RequestBody,
    enforce,
    event_metadata,
    ok,
    page_meta,
    parse_body,
    parse_query,
    path_uuid,
    require_user,
)
from platform_api.application import run_queries
from platform_api.application.runs import RunRequest, request_hash
from platform_api.domain.definitions import LensDefinition, WorkflowDefinition
from platform_api.domain.errors import InvalidDefinition, LensNotFound, RunNotFound, WorkflowNotFound, problem
from platform_api.domain.run_plan import PlanNode, flatten, plan_node_data
from platform_api.http.catalogue import Page
from platform_api.http.keys import RATE_LIMITER, RUNS

routes = web.RouteTableDef()

LENS_EXECUTIONS_PER_MINUTE = 100
WORKFLOW_RUNS_PER_MINUTE = 60

FundingSource = Literal["platform_credit", "user_byok_cloud", "user_byok_local", "sponsored"]


class _RunBody(RequestBody):
    model_override: str | None = Field(default=None, min_length=1, max_length=128)
    provider_override: str | None = Field(default=None, min_length=1, max_length=40)
    funding_source: FundingSource = "platform_credit"
    byok_key_ref_id: str | None = Field(default=None, min_length=1, max_length=200)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class LensExecuteRequest(_RunBody):
    params: dict[str, Any]


class WorkflowRunRequest(_RunBody):
    inputs: dict[str, Any]


def _request_id(request: web.Request) -> UUID:
    """The seed's ``requestId`` is a uuid: the request's own id when it is one, else a new one."""
    try:
        return UUID(str(request[REQUEST_ID]))
    except ValueError:
        return uuid4()


def _check_funding(body: _RunBody) -> None:
    if body.funding_source == "user_byok_cloud" and body.byok_key_ref_id is None:
        raise InvalidDefinition([problem("byokKeyRefId", "required when fundingSource is user_byok_cloud")])


def _accepted(
    request: web.Request, run_id: UUID, status: str, workflow_id: UUID | None = None
) -> web.Response:
    data: dict[str, Any] = {"runId": run_id, "status": status}
    if workflow_id is not None:
        data["workflowId"] = workflow_id
    return ok(request, data, status=202)


@routes.post("/v1/lenses/{lensId}/execute")
async def execute_lens(request: web.Request) -> web.Response:
    caller = await require_user(request)
    lens_id = path_uuid(request, "lensId")
    await enforce(request, request.app[RATE_LIMITER], f"lens-execute:{caller}", LENS_EXECUTIONS_PER_MINUTE)
    body = await parse_body(request, LensExecuteRequest)
    _check_funding(body)
    found = await run_queries.lens_for_run(request.app[PG_POOL], caller, lens_id)
    if found is None:
        raise LensNotFound()
    version, lens = found
    node = PlanNode("lens", str(lens_id), version, lens, lens.model_id, {})
    accepted = await request.app[RUNS].queue(
        _run_request(
            request, caller, "lens", lens_id, version, body, body.params, [plan_node_data(node)], []
        ),
        metadata=event_metadata(request, f"lenser:{caller}"),
    )
    return _accepted(request, accepted.run_id, accepted.status)


@routes.post("/v1/workflows/{workflowId}/run")
async def run_workflow(request: web.Request) -> web.Response:
    caller = await require_user(request)
    workflow_id = path_uuid(request, "workflowId")
    await enforce(request, request.app[RATE_LIMITER], f"workflow-run:{caller}", WORKFLOW_RUNS_PER_MINUTE)
    body = await parse_body(request, WorkflowRunRequest)
    _check_funding(body)
    found = await run_queries.workflow_for_run(request.app[PG_POOL], caller, workflow_id)
    if found is None:
        raise WorkflowNotFound()
    version, workflow = found
    nodes, edges = await _plan(request, workflow)
    accepted = await request.app[RUNS].queue(
        _run_request(
            request,
            caller,
            "workflow",
            workflow_id,
            version,
            body,
            body.inputs,
            nodes,
            edges,
            budget=workflow.budget_credits,
            deadline=workflow.deadline_seconds,
        ),
        metadata=event_metadata(request, f"lenser:{caller}"),
    )
    return _accepted(request, accepted.run_id, accepted.status, workflow_id)


async def _plan(
    request: web.Request, workflow: WorkflowDefinition
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The workflow as lens nodes only (``run_plan.flatten``), with every version it pins, read
    level by level of its sub-workflows (at most 8, as the catalogue allows)."""
    pool = request.app[PG_POOL]
    lenses: dict[tuple[UUID, int], LensDefinition] = {}
    workflows: dict[tuple[UUID, int], WorkflowDefinition] = {}
    level = [workflow]
    while level:
        lens_pins = {(n.lens_id, n.lens_version) for w in level for n in w.nodes if n.lens_id is not None}
        sub_pins = {
            (n.workflow_id, n.workflow_version) for w in level for n in w.nodes if n.workflow_id is not None
        }
        lenses.update(await run_queries.lens_versions(pool, [p for p in lens_pins if p not in lenses]))  # type: ignore[misc]
        found = await run_queries.workflow_versions(pool, [p for p in sub_pins if p not in workflows])  # type: ignore[misc]
        workflows.update(found)
        level = list(found.values())
    nodes, edges = flatten(workflow, lenses, workflows)
    return [plan_node_data(node) for node in nodes], [edge.data() for edge in edges]


def _run_request(
    request: web.Request,
    caller: UUID,
    kind: str,
    target_id: UUID,
    version: int,
    body: _RunBody,
    inputs: dict[str, Any],
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    *,
    budget: int | None = None,
    deadline: int | None = None,
) -> RunRequest:
    return RunRequest(
        lenser_id=caller,
        kind=kind,
        target_id=target_id,
        version=version,
        inputs=inputs,
        nodes=nodes,
        edges=edges,
        funding_source=body.funding_source,
        byok_key_ref_id=body.byok_key_ref_id,
        model_override=body.model_override,
        provider_override=body.provider_override,
        budget_credits=budget,
        deadline_seconds=deadline,
        idempotency_key=body.idempotency_key,
        request_hash=request_hash(kind, target_id, body.model_dump(mode="json", by_alias=True)),
        request_id=_request_id(request),
    )


async def _status_answer(request: web.Request, caller: UUID, run_id: UUID) -> web.Response:
    found = await run_queries.run_status(request.app[PG_POOL], caller, run_id)
    if found is None:
        raise RunNotFound()
    return ok(request, found)


@routes.get("/v1/runs")
async def list_runs(request: web.Request) -> web.Response:
    caller = await require_user(request)
    page = parse_query(request, Page)
    rows, total = await run_queries.runs(request.app[PG_POOL], caller, limit=page.limit, offset=page.offset)
    return ok(request, rows, meta=page_meta(page.limit, page.offset, total))


@routes.get("/v1/runs/{runId}")
async def get_run(request: web.Request) -> web.Response:
    caller = await require_user(request)
    return await _status_answer(request, caller, path_uuid(request, "runId"))


@routes.post("/v1/runs/{runId}/cancel")
async def cancel_run(request: web.Request) -> web.Response:
    """Cancels a queued or running run (its running nodes' late answers are then ignored); a run
    already over is answered as it is. 200 with the run's status."""
    caller = await require_user(request)
    run_id = path_uuid(request, "runId")
    await request.app[RUNS].cancel(caller, run_id, metadata=event_metadata(request, f"lenser:{caller}"))
    return await _status_answer(request, caller, run_id)
