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
    seed = yaml.safe_load(Path(glob.glob(str(SEED / "001_*.txt"))[0]).read_text())
    for path, item in seed["paths"].items():
        for method, operation in item.items():
            ours = {k: v for k, v in spec["paths"][path][method].items() if k != "x-not-yet-served"}
            # Ours may answer more statuses than the seed lists (409 run.idempotency_conflict),
            # never fewer nor other ones.
            added = {s: r for s, r in ours.pop("responses").items() if s not in operation["responses"]}
            assert all(r.get("description", "").startswith("(ours)") for r in added.values()), path
            seed_responses = {s: r for s, r in operation["responses"].items()}
            assert {
                s: ours_r
                for s, ours_r in spec["paths"][path][method]["responses"].items()
                if s in seed_responses
            } == seed_responses, f"{method} {path}"
            assert ours == {k: v for k, v in operation.items() if k != "responses"}, f"{method} {path}"
    for name, schema in seed["components"]["schemas"].items():
        assert spec["components"]["schemas"][name] == schema, name


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
