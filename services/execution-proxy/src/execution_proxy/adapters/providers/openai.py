"""OpenAI's Chat Completions: ``POST {base}/chat/completions`` (the base URL ends in ``/v1``).

A stream is ``data: {chunk}`` lines ending with ``data: [DONE]``; usage comes only because the
request asks for it (``stream_options.include_usage``), in a last chunk whose ``choices`` is empty.
``prompt_tokens`` includes the cached prompt tokens (``prompt_tokens_details.cached_tokens``),
billed at the cache price: they are moved out of the plain input count.
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

NAME = "openai"
DONE = "[DONE]"


class OpenAIProvider:
    name = NAME

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, timeout_seconds: float) -> None:
        self._endpoint = wire.Endpoint(NAME, http, timeout_seconds)
        self._url = f"{base_url.rstrip('/')}/chat/completions"

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion:
        answer = await self._endpoint.post_json(self._url, headers(api_key), body(request))
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise wire.malformed(NAME, "no choices")
        message = choices[0].get("message") or {}
        return Completion(message.get("content") or "", usage_of(answer.get("usage")))

    async def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        streamed = body(request, stream=True)
        async with self._endpoint.open_stream(self._url, headers(api_key), streamed) as response:
            async with aclosing(self._endpoint.sse_events(response)) as events:
                async for _event, data in events:
                    if data.strip() == DONE:
                        return
                    chunk = wire.parse_object(NAME, data)
                    if "error" in chunk:  # an error after the answer began
                        raise ProviderError(
                            NAME, f"stream error: {wire.document_message(chunk)}", transient=True
                        )
                    for choice in chunk.get("choices") or ():
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta")
                        text = delta.get("content") if isinstance(delta, dict) else None
                        if isinstance(text, str) and text:
                            yield TextDelta(text)
                    if isinstance(chunk.get("usage"), dict):
                        yield UsageReport(usage_of(chunk["usage"]))
        raise wire.stream_cut(NAME, "no [DONE]")


def headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {wire.require_key(NAME, api_key)}", "Content-Type": "application/json"}


def body(request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": message.role, "content": message.content} for message in request.messages],
        # The current name: OpenAI's reasoning models refuse the deprecated ``max_tokens``, every
        # chat model accepts this one.
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        document["temperature"] = request.temperature
    if stream:
        document["stream"] = True
        document["stream_options"] = {"include_usage": True}
    return document


def usage_of(stated: Any) -> ProviderUsage:
    if not isinstance(stated, dict):
        return ProviderUsage()
    prompt = wire.whole(stated.get("prompt_tokens"))
    details = stated.get("prompt_tokens_details")
    cached = wire.whole(details.get("cached_tokens")) if isinstance(details, dict) else None
    cached = min(cached or 0, prompt or 0)
    return ProviderUsage(
        input_tokens=None if prompt is None else prompt - cached,
        output_tokens=wire.whole(stated.get("completion_tokens")),
        cache_read_input_tokens=cached,
    )
