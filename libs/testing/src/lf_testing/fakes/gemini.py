"""A fake Gemini API: ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse`` (``data:`` lines, ``\\r\\n`` separated, no end marker).

Every streamed chunk carries ``usageMetadata`` as a running total, as the real API's do; only the
last, whose candidate has ``finishReason``, is final. ``promptTokenCount`` includes
``cachedContentTokenCount``; ``thoughtsTokenCount`` is sent when ``usage.thoughts_tokens`` is set.
The key is ``x-goog-api-key`` (or ``?key=``); a wrong key is a 400 ``API_KEY_INVALID`` as on the
real API; errors are ``{"error": {"code", "message", "status"}}``. Without ``alt=sse`` the stream
is one JSON array. See ``lf_testing.fakes.provider`` for the knobs.

    python -m lf_testing.fakes.gemini --port 8793   # then GEMINI_API_URL=http://127.0.0.1:8793
"""

from __future__ import annotations

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


def data(document: Any) -> bytes:
    return b"data: " + json_bytes(document) + b"\r\n\r\n"


def error_document(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def error_answer(code: int, message: str, status: str) -> web.Response:
    return web.json_response(error_document(code, message, status), status=code)


class FakeGemini(FakeProvider):
    name = "gemini"
    default_port = 8793

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


if __name__ == "__main__":
    run(FakeGemini)
