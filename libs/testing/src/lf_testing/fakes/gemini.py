"""A fake Gemini API: ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` (``data:`` lines, ``\\r\\n`` separated, no end marker).

Every streamed chunk carries ``usageMetadata`` as a running total, as the real API's do; only the
last, whose candidate has ``finishReason``, is final. ``promptTokenCount`` includes
``cachedContentTokenCount``; ``thoughtsTokenCount`` is sent when ``usage.thoughts_tokens`` is set.
The key is ``x-goog-api-key`` (or ``?key=``); a wrong key is a 400 ``API_KEY_INVALID`` as on the
real API; errors are ``{"error": {"code", "message", "status"}}``. Without ``alt=sse`` the stream
is one JSON array. See ``lf_testing.fakes.provider`` for the knobs.

Image generation: a ``generateContent`` whose ``generationConfig.responseModalities`` holds
``"IMAGE"`` (as for ``gemini-2.5-flash-image``) is answered with a text part and an image part,
``{"inlineData": {"mimeType", "data": <base64>}}`` (``image``: a 1x1 PNG unless set), and usage with
``candidatesTokensDetails`` by modality (an image is 1290 output tokens). ``refuse_images`` answers
with text alone and ``finishReason: IMAGE_SAFETY``, as the real model declines a prompt.

    python -m lf_testing.fakes.gemini --port 8793   # then GEMINI_API_URL=http://127.0.0.1:8793
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from aiohttp import web

from lf_testing.fakes.provider import FakeProvider, json_bytes, run

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
IMAGE_TOKENS = 1290  # what the real gemini-2.5-flash-image bills an image as
# A 1x1 transparent PNG: small, and a real image whoever decodes it.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def data(document: Any) -> bytes:
    return b"data: " + json_bytes(document) + b"\r\n\r\n"


def error_document(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def error_answer(code: int, message: str, status: str) -> web.Response:
    return web.json_response(error_document(code, message, status), status=code)


class FakeGemini(FakeProvider):
    name = "gemini"
    default_port = 8793
    image: tuple[str, bytes] = ("image/png", PNG_1X1)
    """The image an image request is answered with: its MIME type and bytes."""
    refuse_images = False
    """Answer image requests with text alone (``finishReason: IMAGE_SAFETY``)."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._models)

    def key_of(self, request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def error(self, status: int, message: str | None = None) -> web.Response:
        if status == 401:  # Gemini refuses a wrong key as a bad argument
            status, message = 400, message or "API key not valid. Please pass a valid API key."
        code = STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return error_answer(status, message or code.replace("_", " ").lower(), code)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return error_answer(404, "Not Found", "NOT_FOUND")
        call, refusal = await self.admit(request)
        if refusal is not None:
            return refusal
        contents = call.body.get("contents")
        if not isinstance(contents, list) or not contents:
            return self.error(400, "* GenerateContentRequest.contents: contents is not specified")
        config = call.body.get("generationConfig")
        modalities = config.get("responseModalities") if isinstance(config, dict) else None
        if method == "generateContent" and isinstance(modalities, list) and "IMAGE" in modalities:
            return web.json_response(self._image_response(model))
        if method == "generateContent":
            answer = self._response(model, self.reply, finished=True, output=self.output_tokens)
            return web.json_response(answer)
        chunks = [
            self._response(model, text, finished=index == len(self.deltas) - 1, output=index + 1)
            for index, text in enumerate(self.deltas)
        ] or [self._response(model, "", finished=True, output=0)]
        if request.query.get("alt") != "sse":
            return web.json_response(chunks)
        return await self.stream(
            request,
            [],
            [data(chunk) for chunk in chunks],
            [],
            malformed=b'data: {"candidates": [{"content": \r\n\r\n',
            in_stream_error=data(error_document(500, "Internal error encountered.", "INTERNAL")),
        )

    def _response(self, model: str, text: str, *, finished: bool, output: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        prompt = self.usage.input_tokens + self.usage.cache_read_input_tokens
        usage: dict[str, Any] = {"promptTokenCount": prompt}
        if finished:
            candidate["finishReason"] = "STOP"
            output = self.output_tokens
        usage["candidatesTokenCount"] = output
        if self.usage.cache_read_input_tokens:
            usage["cachedContentTokenCount"] = self.usage.cache_read_input_tokens
        if self.usage.thoughts_tokens and finished:
            usage["thoughtsTokenCount"] = self.usage.thoughts_tokens
        usage["totalTokenCount"] = prompt + output + (self.usage.thoughts_tokens if finished else 0)
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        }

    def _image_response(self, model: str) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": self.reply}]
        if self.refuse_images:
            finish, details = "IMAGE_SAFETY", []
        else:
            mime, raw = self.image
            parts.append({"inlineData": {"mimeType": mime, "data": base64.b64encode(raw).decode()}})
            finish, details = "STOP", [{"modality": "IMAGE", "tokenCount": IMAGE_TOKENS}]
        text_tokens = len(self.deltas)
        output = text_tokens + sum(detail["tokenCount"] for detail in details)
        prompt = self.usage.input_tokens
        return {
            "candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt + output,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": text_tokens}, *details],
            },
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        }


if __name__ == "__main__":
    run(FakeGemini)
