"""OpenAI's Chat Completions wire format, both ways, as pure functions: the request read into what
an execution needs (refusing what we cannot honour), and answers, chunks and errors written as
OpenAI writes them. The routes are in ``openai_compat``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from execution_proxy.application.executions import ChatOutcome
from execution_proxy.domain.errors import InvalidMessages
from execution_proxy.http.execute import MAX_TOKENS_LIMIT
from lf_contracts import errors as codes
from lf_contracts.errors import VALIDATION_ERROR, ApiError

# --- the request -------------------------------------------------------------------------------

# Fields that change nothing we answer (metadata, hints to OpenAI's own infrastructure): ignored.
IGNORED_FIELDS = frozenset(
    {"user", "metadata", "store", "service_tier", "seed", "parallel_tool_calls", "safety_identifier"}
    | {"prompt_cache_key", "prompt_cache_retention"}
)
# Fields we accept only at the value that asks for nothing we do not do: anything else would be
# silently not honoured (n=2 answered with one choice, tools never called), so it is refused.
NEUTRAL_VALUES: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "top_p": (None, 1),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "logprobs": (None, False),
    "top_logprobs": (None,),
    "logit_bias": (None, {}),
    "stop": (None, [], ""),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
    "web_search_options": (None,),
}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. include_obfuscation: presentation only

    include_usage: StrictBool | None = None


class ChatCompletionRequest(BaseModel):
    """What we honour of OpenAI's body; every other field is kept (``model_extra``) to be judged by
    ``refuse_what_we_cannot_honour``."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: Any = None  # translated by chat_messages, then sanitized by the domain
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None

    def token_limit(self) -> int | None:
        """``max_completion_tokens`` (OpenAI's current name) or the older ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def _invalid(param: str, message: str) -> ApiError:
    return ApiError(VALIDATION_ERROR, message, details={"fields": [{"field": param, "message": message}]})


def refuse_what_we_cannot_honour(body: ChatCompletionRequest) -> None:
    """``validation_error`` naming the first field we would otherwise silently not honour; unknown
    fields are refused as OpenAI refuses them."""
    if body.max_tokens and body.max_completion_tokens and body.max_tokens != body.max_completion_tokens:
        raise _invalid("max_tokens", "set max_completion_tokens or max_tokens, not both")
    for name, value in (body.model_extra or {}).items():
        if name in IGNORED_FIELDS:
            continue
        if name not in NEUTRAL_VALUES:
            raise _invalid(name, f"Unrecognized request argument supplied: {name}")
        if value not in NEUTRAL_VALUES[name]:
            raise _invalid(name, f"{name} is not supported by this endpoint")


def chat_messages(raw: Any) -> Any:
    """OpenAI's messages in our form: ``developer`` is ``system``, text parts joined, ``name`` and
    null fields (what the SDK echoes back of an answer) dropped. Anything else is left as it is for
    the domain's sanitizer to name, so every problem is still reported at once."""
    if not isinstance(raw, list):
        return raw
    return [_message(index, item) if isinstance(item, dict) else item for index, item in enumerate(raw)]


def _message(index: int, item: dict[str, Any]) -> dict[str, Any]:
    message = {key: value for key, value in item.items() if value is not None and key != "name"}
    if message.get("role") == "developer":
        message["role"] = "system"
    content = message.get("content")
    if isinstance(content, list):
        if not all(isinstance(part, dict) and part.get("type") == "text" for part in content):
            field = f"messages.{index}.content"
            raise InvalidMessages([{"field": field, "message": "only text content parts are supported"}])
        message["content"] = "".join(str(part.get("text", "")) for part in content)
    return message


# --- answers -----------------------------------------------------------------------------------

DONE = b"data: [DONE]\n\n"


def data_line(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def usage_view(outcome: ChatOutcome) -> dict[str, int]:
    """OpenAI's usage, plus what the wallet was charged for it."""
    return {
        "prompt_tokens": outcome.input_tokens,
        "completion_tokens": outcome.output_tokens,
        "total_tokens": outcome.input_tokens + outcome.output_tokens,
        "credits_charged": outcome.credits_charged,
    }


@dataclass(frozen=True, slots=True)
class Completion:
    """One chat completion's answer, whole or as chunks: they share id, created and model."""

    execution_id: UUID
    created: int
    model: str
    max_tokens: int
    """The output limit the provider was given: reaching it is finish_reason ``length``."""

    @property
    def id(self) -> str:
        return f"chatcmpl-{self.execution_id}"

    def finish_reason(self, outcome: ChatOutcome) -> str:
        # Providers' own stop reasons are not carried through the adapters; output that reached the
        # limit was cut by it, anything shorter ended on its own.
        return "length" if outcome.output_tokens >= self.max_tokens else "stop"

    def whole(self, outcome: ChatOutcome) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": outcome.content},
                    "logprobs": None,
                    "finish_reason": self.finish_reason(outcome),
                }
            ],
            "usage": usage_view(outcome),
        }

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None, with_usage: bool) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if with_usage:  # as OpenAI does: null on every chunk but the last when usage was asked for
            chunk["usage"] = usage
        return data_line(chunk)

    def _choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def role_chunk(self, with_usage: bool) -> bytes:
        return self._chunk([self._choice({"role": "assistant", "content": ""})], None, with_usage)

    def delta_chunk(self, text: str, with_usage: bool) -> bytes:
        return self._chunk([self._choice({"content": text})], None, with_usage)

    def finish_chunk(self, outcome: ChatOutcome, with_usage: bool) -> bytes:
        return self._chunk([self._choice({}, self.finish_reason(outcome))], None, with_usage)

    def usage_chunk(self, outcome: ChatOutcome) -> bytes:
        return self._chunk([], usage_view(outcome), True)


# --- errors ------------------------------------------------------------------------------------

# OpenAI's error ``type`` where the status alone does not say it. 402 is not a status OpenAI uses
# (it answers 429 insufficient_quota); we keep 402, which the SDK raises as a plain APIStatusError
# and, unlike a 429, never retries.
TYPE_BY_CODE = {
    codes.WALLET_INSUFFICIENT_BALANCE.code: "insufficient_quota",
    codes.WALLET_SPENDING_LIMIT_EXCEEDED.code: "insufficient_quota",
}
TYPE_BY_STATUS = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
PARAM_BY_CODE = {
    codes.EXECUTE_MODEL_NOT_FOUND.code: "model",
    codes.PRICING_NOT_FOUND.code: "model",
    codes.EXECUTE_UNSUPPORTED_PROVIDER.code: "model",
}
# The SDK retries 408, 409, 429 and 5xx unless told otherwise (``x-should-retry``). Only these may
# go another way on a retry; a spending cap or a broken price will not.
RETRYABLE = frozenset(
    {
        codes.RATE_LIMITED.code,
        codes.EXECUTE_PROVIDER_FAILED.code,
        codes.WALLET_RESERVATION_FAILED.code,
        codes.INTERNAL_ERROR.code,
    }
)


def error_type(error: ApiError) -> str:
    status = error.error.status
    if error.error.code in TYPE_BY_CODE:
        return TYPE_BY_CODE[error.error.code]
    if status >= 500:
        return "server_error"
    return TYPE_BY_STATUS.get(status, "invalid_request_error")


def error_param(error: ApiError) -> str | None:
    fields = (error.details or {}).get("fields")
    if isinstance(fields, list) and fields and isinstance(fields[0], dict):
        return fields[0].get("field")
    return PARAM_BY_CODE.get(error.error.code)


def error_body(error: ApiError) -> tuple[dict[str, Any], dict[str, str]]:
    """OpenAI's ``{"error": {message, type, param, code}}`` (``code`` our catalogue's), and the
    headers: the refusal's own (``Retry-After``) and whether the SDK should retry."""
    message = error.message
    fields = (error.details or {}).get("fields")
    if isinstance(fields, list) and fields and not any(f.get("message") == message for f in fields):
        # Every problem at once, as the envelope's details have them (OpenAI's shape has no room).
        message = f"{message}: " + "; ".join(f"{f.get('field')}: {f.get('message')}" for f in fields)
    body = {
        "error": {
            "message": message,
            "type": error_type(error),
            "param": error_param(error),
            "code": error.error.code,
        }
    }
    retry = "true" if error.error.code in RETRYABLE else "false"
    return body, {**error.headers, "x-should-retry": retry}
