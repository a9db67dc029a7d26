"""Google's Gemini API: ``models/{model}:generateContent``, or ``:streamGenerateContent?alt=sse``.

The key goes in ``x-goog-api-key`` (never in the URL, where it would reach access logs). System
messages become ``systemInstruction``; ``assistant`` is ``model``. Usage is ``usageMetadata``:
``promptTokenCount`` includes ``cachedContentTokenCount`` (moved out, billed at the cache price);
``thoughtsTokenCount`` is billed as output, beside ``candidatesTokenCount``. A stream may repeat
``usageMetadata`` on several chunks, each a running total: the last one wins, and the output count
is taken only from the chunk that finishes the answer (``finishReason``), the provider's final word.

Images (``generate``) come from a Gemini image model (``gemini-2.5-flash-image``) through the same
``generateContent``, asked for with ``generationConfig.responseModalities: ["TEXT", "IMAGE"]`` (and
``imageConfig.aspectRatio`` when a size is given); each image is a part
``{"inlineData": {"mimeType": "image/png", "data": "<base64>"}}`` beside any text parts, handed on
as a ``data:`` URI. A 200 with no image part (the model answered only in words, or a safety
``finishReason``) is a refusal, not worth a retry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import aiohttp

from execution_proxy.adapters.providers import wire
from execution_proxy.adapters.providers.base import (
    ChatRequest,
    Completion,
    ImageRequest,
    ImageResult,
    ProviderError,
    ProviderUsage,
    StreamItem,
    TextDelta,
    UsageReport,
)

NAME = "gemini"
ROLES = {"user": "user", "assistant": "model"}
# fal's size names (the image routes' vocabulary) as Gemini's aspect ratios.
ASPECT_RATIOS = {
    "square_hd": "1:1",
    "square": "1:1",
    "portrait_4_3": "3:4",
    "portrait_16_9": "9:16",
    "landscape_4_3": "4:3",
    "landscape_16_9": "16:9",
}


class GeminiProvider:
    name = NAME

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, timeout_seconds: float) -> None:
        self._endpoint = wire.Endpoint(NAME, http, timeout_seconds)
        self._base = f"{base_url.rstrip('/')}/v1beta/models"

    def _url(self, model: str, method: str) -> str:
        return f"{self._base}/{quote(model.removeprefix('models/'), safe='')}:{method}"

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion:
        url = self._url(request.model, "generateContent")
        answer = await self._endpoint.post_json(url, headers(api_key), body(request))
        if not isinstance(answer, dict):
            raise wire.malformed(NAME, "not an object")
        refuse_if_blocked(answer)
        text, _finished = candidate_text(answer)
        return Completion(text, merged(ProviderUsage(), answer.get("usageMetadata"), final=True))

    async def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        url = self._url(request.model, "streamGenerateContent") + "?alt=sse"
        usage, finished = ProviderUsage(), False
        async with self._endpoint.open_stream(url, headers(api_key), body(request)) as response:
            async with aclosing(self._endpoint.sse_events(response)) as events:
                async for _event, data in events:
                    chunk = wire.parse_object(NAME, data)
                    if "error" in chunk:
                        raise ProviderError(
                            NAME, f"stream error: {wire.document_message(chunk)}", transient=True
                        )
                    refuse_if_blocked(chunk)
                    text, finishing = candidate_text(chunk)
                    if text:
                        yield TextDelta(text)
                    finished = finished or finishing
                    now = merged(usage, chunk.get("usageMetadata"), final=finishing)
                    if now != usage:
                        usage = now
                        yield UsageReport(usage)
        # No end marker in this format: a stream is whole only if a chunk said why it finished.
        if not finished:
            raise wire.stream_cut(NAME, "no finishReason")

    async def generate(self, request: ImageRequest, api_key: str | None) -> ImageResult:
        url = self._url(request.model, "generateContent")
        answer = await self._endpoint.post_json(url, headers(api_key), image_body(request))
        if not isinstance(answer, dict):
            raise wire.malformed(NAME, "not an object")
        refuse_if_blocked(answer)
        return ImageResult(candidate_images(answer))


def headers(api_key: str | None) -> dict[str, str]:
    return {"x-goog-api-key": wire.require_key(NAME, api_key), "Content-Type": "application/json"}


def body(request: ChatRequest) -> dict[str, Any]:
    system = [message.content for message in request.messages if message.role == "system"]
    config: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    document: dict[str, Any] = {
        "contents": [
            {"role": ROLES[message.role], "parts": [{"text": message.content}]}
            for message in request.messages
            if message.role != "system"
        ],
        "generationConfig": config,
    }
    if system:
        document["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    return document


def image_body(request: ImageRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if request.image_size is not None:
        config["imageConfig"] = {"aspectRatio": ASPECT_RATIOS.get(request.image_size, "1:1")}
    return {"contents": [{"role": "user", "parts": [{"text": request.prompt}]}], "generationConfig": config}


def candidate_images(answer: dict[str, Any]) -> tuple[str, ...]:
    """The first candidate's images as ``data:`` URIs; none is the model's refusal."""
    candidates = answer.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates else None
    if not isinstance(candidate, dict):
        raise ProviderError(NAME, "no candidate")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    images = []
    for part in parts or ():
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if not isinstance(inline, dict):
            continue
        mime, data = inline.get("mimeType"), inline.get("data")
        if not (isinstance(mime, str) and mime.startswith("image/") and isinstance(data, str) and data):
            raise wire.malformed(NAME, "an image part without its mimeType or data")
        images.append(f"data:{mime};base64,{data}")
    if not images:
        reason = str(candidate.get("finishReason") or "no image part")[:40]
        raise ProviderError(NAME, f"no image generated ({reason})")
    return tuple(images)


def refuse_if_blocked(answer: dict[str, Any]) -> None:
    """A prompt Gemini refuses to answer comes as a 200 with ``promptFeedback.blockReason`` and no
    candidate: a refusal, not a cut stream, and not worth a retry."""
    feedback = answer.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise ProviderError(NAME, f"prompt blocked ({str(reason)[:40]})")


def candidate_text(answer: dict[str, Any]) -> tuple[str, bool]:
    """The first candidate's text (thought summaries left out) and whether it is finished."""
    candidates = answer.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        return "", False
    candidate = candidates[0]
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    text = "".join(
        part["text"]
        for part in parts or ()
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    )
    return text, bool(candidate.get("finishReason"))


def merged(usage: ProviderUsage, stated: Any, *, final: bool) -> ProviderUsage:
    if not isinstance(stated, dict):
        return usage
    changes: dict[str, int] = {}
    prompt = wire.whole(stated.get("promptTokenCount"))
    if prompt is not None:
        cached = min(wire.whole(stated.get("cachedContentTokenCount")) or 0, prompt)
        changes["input_tokens"] = prompt - cached
        changes["cache_read_input_tokens"] = cached
    candidates = wire.whole(stated.get("candidatesTokenCount"))
    thoughts = wire.whole(stated.get("thoughtsTokenCount"))
    if final and (candidates is not None or thoughts is not None):
        changes["output_tokens"] = (candidates or 0) + (thoughts or 0)
    return dataclasses.replace(usage, **changes)
