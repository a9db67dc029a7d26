"""Anthropic's Messages API: ``POST /v1/messages``, buffered or as server-sent events.

Where usage is: ``message_start`` carries the input (plain, cache writes, cache reads) and an
``output_tokens`` of 1 that means nothing; ``message_delta`` carries the output count, cumulative
(several may come, e.g. with server tools: the last is assigned, never added) and, on newer API
versions, the input counts again. An ``error`` event may arrive after the answer began (e.g.
``overloaded_error``): the stream then fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp

from execution_proxy.adapters.providers import wire
from execution_proxy.adapters.providers.base import (
    ChatRequest,
    Completion,
    ProviderError,
    ProviderUsage,
    StreamItem,
    TextDelta,
    UsageReport,
)

NAME = "anthropic"
# The status an in-stream error stands for, so it is as transient as the same refusal before it.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider:
    name = NAME

    def __init__(
        self, http: aiohttp.ClientSession, *, base_url: str, version: str, timeout_seconds: float
    ) -> None:
        self._endpoint = wire.Endpoint(NAME, http, timeout_seconds)
        self._url = f"{base_url.rstrip('/')}/v1/messages"
        self._version = version

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion:
        answer = await self._endpoint.post_json(self._url, self._headers(api_key), body(request))
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise wire.malformed(NAME, "no content")
        text = "".join(
            block.get("text") or ""
            for block in answer["content"]
            if isinstance(block, dict) and block.get("type") == "text"
        )
        return Completion(text, merged(ProviderUsage(), answer.get("usage"), final=True))

    async def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        usage = ProviderUsage()
        headers = self._headers(api_key)
        async with self._endpoint.open_stream(self._url, headers, body(request, stream=True)) as response:
            async with aclosing(self._endpoint.sse_events(response)) as events:
                async for _event, data in events:
                    message = wire.parse_object(NAME, data)
                    kind = message.get("type")
                    if kind == "content_block_delta":
                        delta = message.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield TextDelta(delta["text"])
                    elif kind in ("message_start", "message_delta"):
                        start = kind == "message_start"
                        holder = message.get("message") if start else message
                        stated = holder.get("usage") if isinstance(holder, dict) else None
                        now = merged(usage, stated, final=not start)
                        if now != usage:
                            usage = now
                            yield UsageReport(usage)
                    elif kind == "message_stop":
                        return
                    elif kind == "error":
                        raise in_stream_error(message.get("error"))
                    # ping, content_block_start/stop and event types added later: nothing to do
        raise wire.stream_cut(NAME, "no message_stop")

    def _headers(self, api_key: str | None) -> dict[str, str]:
        return {
            "x-api-key": wire.require_key(NAME, api_key),
            "anthropic-version": self._version,
            "content-type": "application/json",
            "accept": "application/json",
        }


def body(request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """System messages go to the top-level ``system``; the others stay in order."""
    system = [message.content for message in request.messages if message.role == "system"]
    document: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [
            {"role": message.role, "content": message.content}
            for message in request.messages
            if message.role != "system"
        ],
    }
    if system:
        document["system"] = "\n\n".join(system)
    if request.temperature is not None:
        document["temperature"] = request.temperature
    if stream:
        document["stream"] = True
    return document


def merged(usage: ProviderUsage, stated: Any, *, final: bool) -> ProviderUsage:
    """``usage`` with what this event stated assigned over it. The output count is taken only from
    a final statement (``message_delta`` or a buffered answer), never from ``message_start``."""
    if not isinstance(stated, dict):
        return usage
    changes: dict[str, int] = {}
    input_tokens = wire.whole(stated.get("input_tokens"))
    if input_tokens is not None:
        changes["input_tokens"] = input_tokens
    for field in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        value = wire.whole(stated.get(field))
        if value is not None:
            changes[field] = value
    output_tokens = wire.whole(stated.get("output_tokens"))
    if final and output_tokens is not None:
        changes["output_tokens"] = output_tokens
    return dataclasses.replace(usage, **changes)


def in_stream_error(error: Any) -> ProviderError:
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    status = ERROR_STATUS.get(kind) if isinstance(kind, str) else None
    return ProviderError(
        NAME,
        f"stream error {kind or 'unknown'}: {str(message or '')[: wire.MAX_ERROR_MESSAGE]}",
        status=status,
        transient=status is None or wire.is_transient(status),
    )
