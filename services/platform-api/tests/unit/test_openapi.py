"""The OpenAPI document platform-api serves: seed 001's, extended with exactly the routes the app
registers, with catalogue codes."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from lf_contracts.errors import CATALOGUE
from lf_testing.openapi import HTTP_METHODS, documented_operations, registered_operations, responses
from platform_api import app as platform_app
from platform_api.http.errors import CODES
from platform_api.settings import PlatformSettings

SEED = Path("/work/shared/seeds")


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(platform_app.OPENAPI.read_text())


def _not_yet_served(spec: dict) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and operation.get("x-not-yet-served")
    }


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_document_lists_exactly_the_routes_the_app_registers_besides_those_not_yet_served(spec):
    app = platform_app.create_app(PlatformSettings(), background=False)
    assert registered_operations(app) == documented_operations(spec) - _not_yet_served(spec)
    assert not registered_operations(app) & _not_yet_served(spec)


@pytest.mark.skipif(not SEED.exists(), reason="the seeds are not in this checkout")
def test_every_path_and_schema_of_seed_001_is_kept_as_the_seed_wrote_it(spec):
    """A served seed operation may gain responses (statuses the seed does not list) and ``x-``
    notes of ours; everything the seed wrote stays as it wrote it."""
    seed = yaml.safe_load(Path(glob.glob(str(SEED / "001_*.txt"))[0]).read_text())
    for path, item in seed["paths"].items():
        for method, operation in item.items():
            ours = _as_the_seed_sees_it(spec, spec["paths"][path][method], operation)
            assert ours == _resolved_responses(seed, operation), f"{method} {path}"
    for name, schema in seed["components"]["schemas"].items():
        assert spec["components"]["schemas"][name] == schema, name


def _resolved(document: dict, response: dict) -> dict:
    while "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def _resolved_responses(document: dict, operation: dict) -> dict:
    return {**operation, "responses": {s: _resolved(document, r) for s, r in operation["responses"].items()}}


def _as_the_seed_sees_it(spec: dict, ours: dict, seed_operation: dict) -> dict:
    """An operation of ours, less what we may add to the seed's: notes of ours (``x-...``), responses of
    statuses the seed does not list, and the ``x-error-codes`` of a response written out in full
    (the seed's shared responses, e.g. ``BadRequest``, cannot name one route's codes)."""
    kept = {k: v for k, v in ours.items() if not k.startswith("x-")}
    kept["responses"] = {
        status: {k: v for k, v in _resolved(spec, response).items() if k != "x-error-codes"}
        for status, response in ours["responses"].items()
        if status in seed_operation["responses"]
    }
    return kept


def test_every_error_of_ours_is_a_catalogue_code_with_that_status_and_every_refusal_is_documented(spec):
    documented = set()
    not_yet = {f"{method} {path}" for method, path in _not_yet_served(spec)}
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
