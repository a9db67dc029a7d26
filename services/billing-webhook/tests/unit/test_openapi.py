"""The OpenAPI document billing-webhook serves describes exactly its routes, with catalogue codes."""

from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

from billing_webhook import app as billing_app
from billing_webhook.http.errors import CODES
from billing_webhook.settings import BillingSettings
from lf_contracts.errors import CATALOGUE
from lf_testing.openapi import documented_operations, registered_operations, responses


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(billing_app.OPENAPI.read_text())


def test_the_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_document_lists_exactly_the_routes_the_app_registers(spec):
    app = billing_app.create_app(BillingSettings(), background=False)
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
    webhook_and_billing = {c for c in CATALOGUE if c.startswith(("webhook.", "billing."))}
    assert webhook_and_billing | {e.code for e in CODES.values()} <= documented
