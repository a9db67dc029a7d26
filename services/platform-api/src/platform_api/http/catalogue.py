"""``/v1/lenses`` and ``/v1/workflows``: lensers' catalogue, with their Supabase JWT.

Each POST answers 201 with the version it made, as ``GET`` would show it. Someone else's lens or
workflow is 404 unless its latest version is published (``published: true`` in the body of the
version that publishes it; a later version without it unpublishes).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from lf_web import PG_POOL, event_metadata, ok, page_meta, parse_body, parse_query, path_uuid, require_user
from platform_api.application import queries
from platform_api.domain.definitions import LensDefinition, WorkflowDefinition
from platform_api.domain.errors import LensNotFound, WorkflowNotFound
from platform_api.http.keys import CATALOGUE

routes = web.RouteTableDef()


# The largest values PostgreSQL takes for what these become: a version is an ``int`` column, an
# OFFSET a ``bigint``. Larger ones are refused here (400) rather than failing to bind (a 500).
MAX_VERSION = 2**31 - 1
MAX_OFFSET = 2**63 - 1


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class Version(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


class LensBody(LensDefinition):
    """A lens version as sent: the definition, in camelCase, unknown fields refused."""


class WorkflowBody(WorkflowDefinition):
    """A workflow version as sent."""


def _metadata(request: web.Request, caller: UUID) -> dict[str, Any]:
    return event_metadata(request, f"lenser:{caller}")


async def _lens_answer(
    request: web.Request, caller: UUID, lens_id: UUID, version: int | None, status: int
) -> web.Response:
    found = await queries.lens(request.app[PG_POOL], caller, lens_id, version)
    if found is None:
        raise LensNotFound()
    return ok(request, found, status=status)


async def _workflow_answer(
    request: web.Request, caller: UUID, workflow_id: UUID, version: int | None, status: int
) -> web.Response:
    found = await queries.workflow(request.app[PG_POOL], caller, workflow_id, version)
    if found is None:
        raise WorkflowNotFound()
    return ok(request, found, status=status)


@routes.post("/v1/lenses")
async def create_lens(request: web.Request) -> web.Response:
    caller = await require_user(request)
    body = await parse_body(request, LensBody)
    lens_id, version = await request.app[CATALOGUE].create_lens(
        caller, LensDefinition.model_validate(body.model_dump()), metadata=_metadata(request, caller)
    )
    return await _lens_answer(request, caller, lens_id, version, 201)


@routes.get("/v1/lenses")
async def list_lenses(request: web.Request) -> web.Response:
    caller = await require_user(request)
    page = parse_query(request, Page)
    rows, total = await queries.lenses(request.app[PG_POOL], caller, limit=page.limit, offset=page.offset)
    return ok(request, rows, meta=page_meta(page.limit, page.offset, total))


@routes.get("/v1/lenses/{lensId}")
async def get_lens(request: web.Request) -> web.Response:
    caller = await require_user(request)
    lens_id = path_uuid(request, "lensId")
    asked = parse_query(request, Version)
    return await _lens_answer(request, caller, lens_id, asked.version, 200)


@routes.post("/v1/lenses/{lensId}/versions")
async def revise_lens(request: web.Request) -> web.Response:
    caller = await require_user(request)
    lens_id = path_uuid(request, "lensId")
    body = await parse_body(request, LensBody)
    version = await request.app[CATALOGUE].revise_lens(
        caller, lens_id, LensDefinition.model_validate(body.model_dump()), metadata=_metadata(request, caller)
    )
    return await _lens_answer(request, caller, lens_id, version, 201)


@routes.post("/v1/workflows")
async def create_workflow(request: web.Request) -> web.Response:
    caller = await require_user(request)
    body = await parse_body(request, WorkflowBody)
    workflow_id, version = await request.app[CATALOGUE].create_workflow(
        caller, WorkflowDefinition.model_validate(body.model_dump()), metadata=_metadata(request, caller)
    )
    return await _workflow_answer(request, caller, workflow_id, version, 201)


@routes.get("/v1/workflows")
async def list_workflows(request: web.Request) -> web.Response:
    caller = await require_user(request)
    page = parse_query(request, Page)
    rows, total = await queries.workflows(request.app[PG_POOL], caller, limit=page.limit, offset=page.offset)
    return ok(request, rows, meta=page_meta(page.limit, page.offset, total))


@routes.get("/v1/workflows/{workflowId}")
async def get_workflow(request: web.Request) -> web.Response:
    caller = await require_user(request)
    workflow_id = path_uuid(request, "workflowId")
    asked = parse_query(request, Version)
    return await _workflow_answer(request, caller, workflow_id, asked.version, 200)


@routes.post("/v1/workflows/{workflowId}/versions")
async def revise_workflow(request: web.Request) -> web.Response:
    caller = await require_user(request)
    workflow_id = path_uuid(request, "workflowId")
    body = await parse_body(request, WorkflowBody)
    version = await request.app[CATALOGUE].revise_workflow(
        caller,
        workflow_id,
        WorkflowDefinition.model_validate(body.model_dump()),
        metadata=_metadata(request, caller),
    )
    return await _workflow_answer(request, caller, workflow_id, version, 201)
