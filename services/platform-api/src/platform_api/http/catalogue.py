"""``/v1/lenses`` and ``/v1/workflows``: lensers' catalogue, with their Supabase JWT.

Each POST answers 201 with the version it made, as ``GET`` would show it. Someone else's lens or
workflow is 404 unless its latest version is published (``published: true`` in the body of the
version that publishes it; a later version without it unpublishes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from lf_web import PG_POOL, event_metadata, ok, page_meta, parse_body, parse_query, path_uuid, require_user
from platform_api.application import queries
from platform_api.application.catalogue import CatalogueUseCases
from platform_api.domain.definitions import LensDefinition, WorkflowDefinition
from platform_api.domain.errors import CatalogueError, LensNotFound, WorkflowNotFound
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


@dataclass(frozen=True)
class EntryKind:
    """What tells lenses and workflows apart; their four routes are the same (``_serve``)."""

    path: str
    item_path: str
    id_param: str
    body: type[LensDefinition] | type[WorkflowDefinition]
    definition: type[LensDefinition] | type[WorkflowDefinition]
    create: Callable[..., Awaitable[tuple[UUID, int]]]
    revise: Callable[..., Awaitable[int]]
    one: Callable[..., Awaitable[dict[str, Any] | None]]
    page: Callable[..., Awaitable[tuple[list[dict[str, Any]], int]]]
    not_found: type[CatalogueError]


LENSES = EntryKind(
    path="/v1/lenses",
    item_path="/v1/lenses/{lensId}",
    id_param="lensId",
    body=LensBody,
    definition=LensDefinition,
    create=CatalogueUseCases.create_lens,
    revise=CatalogueUseCases.revise_lens,
    one=queries.lens,
    page=queries.lenses,
    not_found=LensNotFound,
)
WORKFLOWS = EntryKind(
    path="/v1/workflows",
    item_path="/v1/workflows/{workflowId}",
    id_param="workflowId",
    body=WorkflowBody,
    definition=WorkflowDefinition,
    create=CatalogueUseCases.create_workflow,
    revise=CatalogueUseCases.revise_workflow,
    one=queries.workflow,
    page=queries.workflows,
    not_found=WorkflowNotFound,
)


def _serve(kind: EntryKind) -> None:
    """Adds the routes of one kind of entry: create, list, get (a version of) one, add a version."""

    async def answer(
        request: web.Request, caller: UUID, entry_id: UUID, version: int | None, status: int
    ) -> web.Response:
        found = await kind.one(request.app[PG_POOL], caller, entry_id, version)
        if found is None:
            raise kind.not_found()
        return ok(request, found, status=status)

    async def definition(request: web.Request) -> LensDefinition | WorkflowDefinition:
        body = await parse_body(request, kind.body)
        return kind.definition.model_validate(body.model_dump())

    @routes.post(kind.path)
    async def create(request: web.Request) -> web.Response:
        caller = await require_user(request)
        entry_id, version = await kind.create(
            request.app[CATALOGUE], caller, await definition(request), metadata=_metadata(request, caller)
        )
        return await answer(request, caller, entry_id, version, 201)

    @routes.get(kind.path)
    async def list_(request: web.Request) -> web.Response:
        caller = await require_user(request)
        page = parse_query(request, Page)
        rows, total = await kind.page(request.app[PG_POOL], caller, limit=page.limit, offset=page.offset)
        return ok(request, rows, meta=page_meta(page.limit, page.offset, total))

    @routes.get(kind.item_path)
    async def get(request: web.Request) -> web.Response:
        caller = await require_user(request)
        entry_id = path_uuid(request, kind.id_param)
        asked = parse_query(request, Version)
        return await answer(request, caller, entry_id, asked.version, 200)

    @routes.post(f"{kind.item_path}/versions")
    async def revise(request: web.Request) -> web.Response:
        caller = await require_user(request)
        entry_id = path_uuid(request, kind.id_param)
        revised = await definition(request)
        version = await kind.revise(
            request.app[CATALOGUE], caller, entry_id, revised, metadata=_metadata(request, caller)
        )
        return await answer(request, caller, entry_id, version, 201)


def _metadata(request: web.Request, caller: UUID) -> dict[str, Any]:
    return event_metadata(request, f"lenser:{caller}")


_serve(LENSES)
_serve(WORKFLOWS)
