"""A fake Anthropic Messages API: ``POST /v1/messages``, buffered or streamed as server-sent events.

The stream is the real sequence: ``message_start`` (input usage, cache tokens, ``output_tokens: 1``),
``content_block_start``, a ``ping``, one ``content_block_delta`` (``text_delta``) per delta,
``content_block_stop``, ``message_delta`` (the cumulative output count; ``message_delta_usage``
sends several, e.g. ``[{"output_tokens": 5}, {"output_tokens": 9}]``), ``message_stop``. The key is
``x-api-key``; errors are ``{"type": "error", "error": {"type", "message"}}``; the in-stream error
is an ``error`` event (``overloaded_error``). See ``lf_testing.fakes.provider`` for the knobs.

    python -m lf_testing.fakes.anthropic --port 8792   # then ANTHROPIC_API_URL=http://127.0.0.1:8792
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from lf_testing.fakes.provider import FakeProvider, json_bytes, run

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

END_TURN = {"stop_reason": "end_turn", "stop_sequence": None}


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + json_bytes(data) + b"\n\n"


class FakeAnthropic(FakeProvider):
    name = "anthropic"
    default_port = 8792

    def __init__(self, *, message_delta_usage: Sequence[dict[str, int]] | None = None, **knobs: Any) -> None:
        """``message_delta_usage``: the usage of each ``message_delta`` event, in order (default:
        one, with the output count)."""
        super().__init__(**knobs)
        self.message_delta_usage = message_delta_usage

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    def key_of(self, request: web.Request) -> str | None:
        return request.headers.get("x-api-key")

    def error(self, status: int, message: str | None = None) -> web.Response:
        kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        document = {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}
        return web.json_response(document, status=status, headers={"request-id": f"req_{uuid.uuid4().hex}"})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        call, refusal = await self.admit(request)
        if refusal is not None:
            return refusal
        body = call.body
        if not request.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version header is required")
        if not isinstance(body.get("max_tokens"), int) or not isinstance(body.get("messages"), list):
            return self.error(400, "max_tokens and messages are required")
        model = str(body.get("model"))
        if body.get("stream"):
            return await self._stream(request, model)
        return web.json_response(
            {
                **self._message(model),
                "content": [{"type": "text", "text": self.reply}],
                "stop_reason": "end_turn",
                "usage": {**self._input_usage(), "output_tokens": self.output_tokens},
            }
        )

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        start = {**self._message(model), "content": [], "stop_reason": None}
        start["usage"] = {**self._input_usage(), "output_tokens": 1}
        head = [
            event("message_start", {"type": "message_start", "message": start}),
            event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            event("ping", {"type": "ping"}),
        ]
        deltas = [
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )
            for text in self.deltas
        ]
        finals = self.message_delta_usage or [{"output_tokens": self.output_tokens}]
        tail = [
            event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            *(
                event(
                    "message_delta",
                    {"type": "message_delta", "delta": END_TURN, "usage": usage},
                )
                for usage in finals
            ),
            event("message_stop", {"type": "message_stop"}),
        ]
        overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return await self.stream(
            request,
            head,
            deltas,
            tail,
            malformed=b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n',
            in_stream_error=event("error", overloaded),
        )

    def _message(self, model: str) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "stop_sequence": None,
        }

    def _input_usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.usage.input_tokens,
            "cache_creation_input_tokens": self.usage.cache_creation_input_tokens,
            "cache_read_input_tokens": self.usage.cache_read_input_tokens,
        }


if __name__ == "__main__":
    run(FakeAnthropic)
