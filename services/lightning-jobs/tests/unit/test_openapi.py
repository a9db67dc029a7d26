"""The OpenAPI document lightning-jobs serves: seed 002's, extended with exactly the routes the app
registers (the seed's later slices marked ``x-not-yet-served``), with catalogue codes."""

from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

from lf_contracts.errors import CATALOGUE
from lf_testing.openapi import HTTP_METHODS, documented_operations, registered_operations, responses
from lightning_jobs import app as lightning_app
from lightning_jobs.http.errors import CODES
from lightning_jobs.settings import LightningSettings


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(lightning_app.OPENAPI.read_text())


def _served_under(spec: dict, operations: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Seed 002's paths are relative to its server, ``/api``; the kit's routes name their own
    (``/``); the app's routes are whole paths."""

    def base(path: str) -> str:
        servers = spec["paths"][path].get("servers") or spec["servers"]
        return servers[0]["url"].rstrip("/")

    return {(method, base(path) + path) for method, path in operations}


def _marked(spec: dict, note: str) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and operation.get(note)
    }


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_document_lists_exactly_the_routes_a_development_app_registers(spec):
    app = lightning_app.create_app(LightningSettings(env_mode="development"), background=False)
    assert registered_operations(app) == _served_under(
        spec, documented_operations(spec) - _marked(spec, "x-not-yet-served")
    )


def test_production_registers_no_development_route(spec):
    settings = LightningSettings(env_mode="production", platform_api_key="p" * 40, macaroon_root_key="m" * 40)
    app = lightning_app.create_app(settings, background=False)
    development_only = _served_under(spec, _marked(spec, "x-development-only"))
    assert development_only
    assert not registered_operations(app) & development_only


def test_every_error_of_ours_is_a_catalogue_code_with_that_status_and_every_refusal_is_documented(spec):
    documented = set()
    not_yet = {f"{method} {path}" for method, path in _marked(spec, "x-not-yet-served")}
    for where, status, response in responses(spec):
        if where in not_yet or where.endswith("/health"):
            continue
        codes = response.get("x-error-codes", [])
        documented.update(codes)
        for code in codes:
            assert CATALOGUE[code].status == int(status), f"{where}: {code} is not a {status}"
        if int(status) >= 400:
            assert codes, f"{where} {status} names no error code"
    assert {code.code for code in CODES.values()} <= documented
