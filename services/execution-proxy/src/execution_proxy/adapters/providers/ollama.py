"""Ollama's chat API: ``POST /api/chat``, one JSON object, or NDJSON lines when streaming.

No key. Each streamed line is ``{"message": {"content"}, "done": false}``; the last is
``{"done": true, "prompt_eval_count", "eval_count"}`` (input and output tokens). Ollama leaves
``prompt_eval_count`` out when it reused a cached prompt: the input is then not stated.
"""

from __future__ import annotations

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

NAME = "ollama"
HEADERS = {"Content-Type": "application/json"}


class OllamaProvider:
    name = NAME

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, timeout_seconds: float) -> None:
        self._endpoint = wire.Endpoint(NAME, http, timeout_seconds)
        self._url = f"{base_url.rstrip('/')}/api/chat"

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion:
        answer = await self._endpoint.post_json(self._url, HEADERS, body(request, stream=False))
        if not isinstance(answer, dict) or not isinstance(answer.get("message"), dict):
            raise wire.malformed(NAME, "no message")
        return Completion(answer["message"].get("content") or "", usage_of(answer))

    async def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        async with self._endpoint.open_stream(self._url, HEADERS, body(request, stream=True)) as response:
            async with aclosing(self._endpoint.lines(response)) as lines:
                async for line in lines:
                    if not line.strip():
                        continue
                    chunk = wire.parse_object(NAME, line)
                    if "error" in chunk:
                        raise ProviderError(
                            NAME, f"stream error: {wire.document_message(chunk)}", transient=True
                        )
                    message = chunk.get("message")
                    text = message.get("content") if isinstance(message, dict) else None
                    if isinstance(text, str) and text:
                        yield TextDelta(text)
                    if chunk.get("done"):
                        yield UsageReport(usage_of(chunk))
                        return
        raise wire.stream_cut(NAME, "no done line")


def body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"num_predict": request.max_tokens}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    return {
        "model": request.model,
        "messages": [{"role": message.role, "content": message.content} for message in request.messages],
        "stream": stream,
        "options": options,
    }


def usage_of(answer: dict[str, Any]) -> ProviderUsage:
    return ProviderUsage(
        input_tokens=wire.whole(answer.get("prompt_eval_count")),
        output_tokens=wire.whole(answer.get("eval_count")),
    )
