"""An app built with the real factory, a few tiny routes, and a client on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from lf_pg import migrate
from lf_web import (
    MIGRATIONS,
    PG_POOL,
    RateLimiter,
    ServiceSettings,
    create_app,
    enforce,
    ok,
    page_meta,
    parse_body,
    parse_query,
    require_user,
)

SCHEMA = "web_test"
THING_ID = UUID("6f1c2b1e-4a3b-4c5d-8e9f-0a1b2c3d4e5f")

routes = web.RouteTableDef()


class Owner(BaseModel):
    name: str
    age: int


class Thing(BaseModel):
    name: str
    price: Decimal
    owner: Owner


class Search(BaseModel):
    limit: int = 10
    tag: list[str] = []


@routes.get("/things")
async def list_things(request: web.Request) -> web.Response:
    thing = {"id": THING_ID, "at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "price": Decimal("1.10")}
    return ok(request, [thing], meta=page_meta(limit=1, offset=0, total=3))


@routes.post("/things")
async def create_thing(request: web.Request) -> web.Response:
    return ok(request, await parse_body(request, Thing), status=201)


@routes.get("/search")
async def search(request: web.Request) -> web.Response:
    return ok(request, parse_query(request, Search))


@routes.get("/boom")
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("the database password is hunter2")


@routes.get("/me")
async def me(request: web.Request) -> web.Response:
    return ok(request, {"lenserId": await require_user(request)})


@routes.get("/internal/ping")
async def internal_ping(request: web.Request) -> web.Response:
    return ok(request, "pong")


@routes.get("/limited")
async def limited(request: web.Request) -> web.Response:
    await enforce(request, RateLimiter(request.app[PG_POOL]), "limited", limit=2)
    return ok(request, "fine")


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(database_url: str) -> AsyncIterator[MakeClient]:
    """Starts the test app; keyword arguments override settings, ``setup`` edits the app first."""
    clients: list[TestClient] = []
    await migrate(database_url, SCHEMA, [MIGRATIONS])

    async def make(setup: Callable[[web.Application], None] | None = None, **overrides: object) -> TestClient:
        settings = ServiceSettings(database_url=database_url, max_body_bytes=1024, **overrides)
        app = create_app(settings, service="web-test", schema=SCHEMA)
        app.router.add_routes(routes)
        if setup:
            setup(app)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    return await make_client()
