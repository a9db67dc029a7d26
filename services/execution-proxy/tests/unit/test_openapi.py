"""The OpenAPI document execution-proxy serves describes exactly its routes, with catalogue codes."""

from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

from execution_proxy import app as execution_app
from execution_proxy.adapters.wallet import PASSED_THROUGH
from execution_proxy.http.errors import CODES
from execution_proxy.settings import ExecutionSettings
from lf_contracts.errors import CATALOGUE, WALLET_RESERVATION_FAILED
from lf_testing.openapi import documented_operations, registered_operations, responses

# The routes that reserve in a wallet before running: each passes the wallet's refusals through.
RESERVING = [
    ("post", "/execute/wallet"),
    ("post", "/execute/stream"),
    ("post", "/execute/image"),
    ("post", "/execute/openai/v1/chat/completions"),
    ("post", "/internal/executions"),
    ("post", "/internal/executions/image"),
]


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(execution_app.OPENAPI.read_text())


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_document_lists_exactly_the_routes_the_app_registers(spec):
    app = execution_app.create_app(ExecutionSettings(), background=False)
    assert registered_operations(app) == documented_operations(spec)


def test_every_documented_error_is_a_catalogue_code_with_that_status_and_every_refusal_is_documented(spec):
    documented = set()
    for where, status, response in responses(spec):
        codes = response.get("x-error-codes", [])
        documented.update(codes)
        for code in codes:
            assert CATALOGUE[code].status == int(status), f"{where}: {code} is not a {status}"
        if int(status) >= 400 and not where.endswith("/health"):
            assert codes, f"{where} {status} names no error code"
    execute_and_pricing = {c for c in CATALOGUE if c.startswith(("execute.", "pricing."))}
    assert execute_and_pricing | {e.code for e in CODES.values()} <= documented


@pytest.mark.parametrize("route", RESERVING, ids=" ".join)
def test_a_route_that_reserves_documents_the_wallet_codes_it_passes_through(spec, route):
    method, path = route
    codes = {
        code
        for where, _, response in responses(spec)
        if where == f"{method} {path}"
        for code in response.get("x-error-codes", [])
    }
    expected = PASSED_THROUGH | {WALLET_RESERVATION_FAILED.code}
    if not path.startswith("/internal/"):  # only a caller's referenceId can be reused for another amount
        expected -= {"wallet.idempotency_conflict"}
    assert expected <= codes
