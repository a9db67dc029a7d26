"""The shared plumbing's pure parts: the wait a refusal asks for, and a provider's error message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from execution_proxy.adapters.providers.wire import error_message, is_transient, retry_after


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_seconds_or_milliseconds(headers, seconds):
    assert retry_after(headers) == seconds


def test_retry_after_as_an_http_date():
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert 25 <= retry_after({"Retry-After": later}) <= 30


@pytest.mark.parametrize(
    ("status", "transient"), [(400, False), (401, False), (429, True), (500, True), (529, True)]
)
def test_which_statuses_are_transient(status, transient):
    assert is_transient(status) is transient


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', "Overloaded"),
        (b'{"error": {"message": "Rate limit reached", "type": "requests"}}', "Rate limit reached"),
        (
            b'{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}',
            "Resource exhausted",
        ),
        (b'{"error": "model not found"}', "model not found"),
        (b'{"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}', "field required"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    ],
)
def test_the_message_of_each_providers_error_document(body, message):
    assert error_message(body) == message
