"""The pieces every route reads with: the camelCase body model, path parameters, domain refusals."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import StrictInt

from lf_contracts.errors import NOT_FOUND, VALIDATION_ERROR
from lf_web import RequestBody, ok, parse_body, path_matching, path_uuid
from lf_web.errors import domain_errors_middleware, error_middleware
from lf_web.request_context import request_context_middleware

routes = web.RouteTableDef()
SLUG = re.compile(r"[a-z]{1,8}")


class Refused(Exception):
    pass


class NotThere(Refused):
    pass


class Unmapped(Exception):
    pass


class Order(RequestBody):
    lenser_id: UUID
    unit_price: StrictInt


@routes.post("/orders/{order_id}")
async def order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    body = await parse_body(request, Order)
    return ok(request, {"orderId": order_id, "lenserId": body.lenser_id, "unitPrice": body.unit_price})


@routes.get("/slugs/{slug}")
async def slug(request: web.Request) -> web.Response:
    return ok(request, {"slug": path_matching(request, "slug", SLUG, "1 to 8 of a-z")})


@routes.get("/refusals/{kind}")
async def refuse(request: web.Request) -> web.Response:
    kinds = {"base": Refused("no, said the base"), "sub": NotThere(), "bug": Unmapped("oops")}
    raise kinds[request.match_info["kind"]]


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    codes = {Refused: VALIDATION_ERROR, NotThere: NOT_FOUND}
    app = web.Application(
        middlewares=[request_context_middleware, error_middleware, domain_errors_middleware(codes)]
    )
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as client:
        yield client


ORDER = "/orders/6f1c2b1e-4a3b-4c5d-8e9f-0a1b2c3d4e5f"
LENSER = "0b7e2a52-1f4c-4d6e-9a8b-7c6d5e4f3a2b"


async def _error(response) -> dict:
    return (await response.json())["error"]


async def test_a_body_is_read_by_its_camel_case_names(client: TestClient) -> None:
    response = await client.post(ORDER, json={"lenserId": LENSER, "unitPrice": 3})

    assert response.status == 200
    assert (await response.json())["data"]["unitPrice"] == 3


async def test_a_validation_error_names_the_fields_as_the_client_sent_them(client: TestClient) -> None:
    response = await client.post(ORDER, json={"lenserId": "nope", "unitPrice": "3", "colour": "red"})

    assert response.status == 400
    error = await _error(response)
    assert error["code"] == "validation_error"
    assert {f["field"] for f in error["details"]["fields"]} == {"lenserId", "unitPrice", "colour"}


async def test_a_missing_field_is_named_in_camel_case(client: TestClient) -> None:
    error = await _error(await client.post(ORDER, json={"unitPrice": 3}))

    assert [f["field"] for f in error["details"]["fields"]] == ["lenserId"]


async def test_a_bad_path_parameter_is_a_validation_error_naming_it(client: TestClient) -> None:
    error = await _error(await client.post("/orders/42", json={"lenserId": LENSER, "unitPrice": 3}))
    assert error["details"]["fields"] == [{"field": "order_id", "message": "not a UUID"}]

    error = await _error(await client.get("/slugs/NOPE"))
    assert error["details"]["fields"] == [{"field": "slug", "message": "1 to 8 of a-z"}]
    assert (await (await client.get("/slugs/fine")).json())["data"] == {"slug": "fine"}


async def test_a_domain_refusal_is_answered_with_its_code_and_message(client: TestClient) -> None:
    response = await client.get("/refusals/base")

    assert response.status == 400
    assert (await _error(response))["code"] == "validation_error"
    assert (await _error(response))["message"] == "no, said the base"


async def test_a_refusal_without_a_code_of_its_own_takes_its_base_class_code(client: TestClient) -> None:
    assert (await client.get("/refusals/sub")).status == 404


async def test_an_exception_that_is_no_refusal_stays_a_bug(client: TestClient) -> None:
    response = await client.get("/refusals/bug")

    assert response.status == 500
    assert (await _error(response))["code"] == "internal_error"
