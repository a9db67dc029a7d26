"""OpenAI's wire format as the compatible surface reads and writes it (pure: no server)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from execution_proxy.application.executions import ChatOutcome
from execution_proxy.domain.errors import InvalidMessages
from execution_proxy.http import openai_shapes as shapes
from lf_contracts import errors as codes
from lf_contracts.errors import ApiError


@pytest.mark.parametrize(
    ("code", "status", "kind", "retry"),
    [
        (codes.AUTH_INVALID_TOKEN, 401, "authentication_error", "false"),
        (codes.VALIDATION_ERROR, 400, "invalid_request_error", "false"),
        (codes.EXECUTE_MODEL_NOT_FOUND, 404, "invalid_request_error", "false"),
        (codes.WALLET_INSUFFICIENT_BALANCE, 402, "insufficient_quota", "false"),
        (codes.WALLET_ACCOUNT_FROZEN, 403, "permission_error", "false"),
        (codes.WALLET_SPENDING_LIMIT_EXCEEDED, 429, "insufficient_quota", "false"),
        (codes.RATE_LIMITED, 429, "rate_limit_error", "true"),
        (codes.EXECUTE_PRICING_FAILED, 500, "server_error", "false"),
        (codes.EXECUTE_PROVIDER_FAILED, 502, "server_error", "true"),
        (codes.WALLET_RESERVATION_FAILED, 503, "server_error", "true"),
    ],
)
def test_each_refusal_keeps_its_status_and_code_with_openais_type(code, status, kind, retry):
    body, headers = shapes.error_body(ApiError(code, headers={"Retry-After": "3"}))

    assert code.status == status
    assert body["error"]["type"] == kind
    assert body["error"]["code"] == code.code
    assert headers == {"Retry-After": "3", "x-should-retry": retry}


def test_an_error_names_its_first_field_as_param_and_lists_them_all_in_the_message():
    problems = [
        {"field": "messages.0.role", "message": "must be system, user or assistant"},
        {"field": "messages.1.content", "message": "must be a string"},
    ]
    body, _ = shapes.error_body(ApiError(codes.EXECUTE_INVALID_MESSAGES, details={"fields": problems}))

    assert body["error"]["param"] == "messages.0.role"
    assert "messages.1.content: must be a string" in body["error"]["message"]


def request(**fields) -> shapes.ChatCompletionRequest:
    return shapes.ChatCompletionRequest.model_validate({"model": "local-small", "messages": [], **fields})


@pytest.mark.parametrize(
    "fields", [{"n": 1, "top_p": 1, "stop": None, "tools": []}, {"user": "u-1", "seed": 3, "metadata": {}}]
)
def test_neutral_and_harmless_fields_pass(fields):
    shapes.refuse_what_we_cannot_honour(request(**fields))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 3}, "n"),
        ({"stop": ["\n"]}, "stop"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"frobnicate": True}, "frobnicate"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens"),
    ],
)
def test_what_would_not_be_honoured_is_refused_by_name(fields, param):
    with pytest.raises(ApiError) as refused:
        shapes.refuse_what_we_cannot_honour(request(**fields))

    assert shapes.error_param(refused.value) == param


def test_openai_message_forms_become_ours():
    raw = [
        {"role": "developer", "content": "Be brief", "name": "ops"},
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}]},
        {"role": "assistant", "content": "Hello", "refusal": None, "tool_calls": None},
    ]

    assert shapes.chat_messages(raw) == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi you"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_an_image_part_is_named_as_unsupported():
    raw = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]

    with pytest.raises(InvalidMessages) as refused:
        shapes.chat_messages(raw)

    assert refused.value.problems[0]["field"] == "messages.0.content"


def outcome(output_tokens: int) -> ChatOutcome:
    return ChatOutcome(uuid4(), "text", "local", "local-small", 8, output_tokens, "provider", 2, None)


def test_output_that_reached_the_limit_finished_for_length():
    completion = shapes.Completion(uuid4(), 0, "local-small", max_tokens=10)

    assert completion.finish_reason(outcome(10)) == "length"
    assert completion.finish_reason(outcome(9)) == "stop"
    assert completion.whole(outcome(9))["usage"] == {
        "prompt_tokens": 8,
        "completion_tokens": 9,
        "total_tokens": 17,
        "credits_charged": 2,
    }
