"""A fake OpenAI Chat Completions API: ``POST /v1/chat/completions``, buffered or streamed.

``fake.url`` ends in ``/v1``, as ``OPENAI_API_URL`` does. The stream is ``data: {chunk}`` lines:
a first chunk with the role, one per delta, one with ``finish_reason``, then, only when the request
asks with ``stream_options.include_usage``, a usage chunk whose ``choices`` is empty, then
``data: [DONE]``. ``prompt_tokens`` includes the cached tokens (``prompt_tokens_details.cached_tokens``).
The key is ``Authorization: Bearer``; errors are ``{"error": {"message", "type", "param", "code"}}``.
See ``lf_testing.fakes.provider`` for the knobs.

    python -m lf_testing.fakes.openai --port 8791   # then OPENAI_API_URL=http://127.0.0.1:8791/v1
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from lf_testing.fakes.provider import FakeProvider, json_bytes, run

ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def data(document: Any) -> bytes:
    return b"data: " + json_bytes(document) + b"\n\n"


class FakeOpenAI(FakeProvider):
    name = "openai"
    default_port = 8791

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    def key_of(self, request: web.Request) -> str | None:
        value = request.headers.get("Authorization", "")
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None

    def error(self, status: int, message: str | None = None) -> web.Response:
        kind, code = ERRORS.get(status, ("server_error", None))
        text = message or ("Incorrect API key provided." if status == 401 else f"fake error {status}")
        document = {"error": {"message": text, "type": kind, "param": None, "code": code}}
        return web.json_response(document, status=status)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        call, refusal = await self.admit(request)
        if refusal is not None:
            return refusal
        body = call.body
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return self.error(400, "model and messages are required")
        model, ident, created = str(body["model"]), f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": self.reply, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            return web.json_response(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": self._usage(),
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
            document = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
            document["choices"] = choices
            if include_usage:
                document["usage"] = usage
            return data(document)

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        tail = [chunk(choice({}, "stop"))]
        if include_usage:
            tail.append(chunk([], self._usage()))
        tail.append(b"data: [DONE]\n\n")
        return await self.stream(
            request,
            [chunk(choice({"role": "assistant", "content": "", "refusal": None}))],
            [chunk(choice({"content": text})) for text in self.deltas],
            tail,
            malformed=b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n',
            in_stream_error=data({"error": {"message": "The server had an error", "type": "server_error"}}),
        )

    def _usage(self) -> dict[str, Any]:
        prompt = self.usage.input_tokens + self.usage.cache_read_input_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": self.output_tokens,
            "total_tokens": prompt + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.usage.cache_read_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }


if __name__ == "__main__":
    run(FakeOpenAI)
