"""A fake Ollama: ``POST /api/chat``, one JSON object (``stream: false``) or NDJSON lines.

Like the real server, it streams unless told ``stream: false``. Each line is
``{"model", "created_at", "message": {"role": "assistant", "content"}, "done": false}``; the last is
``{"done": true, "done_reason": "stop", "prompt_eval_count", "eval_count", ...durations}``. No key
(``api_key`` is ignored); errors are ``{"error": "..."}``, in a stream too. See
``lf_testing.fakes.provider`` for the knobs.

    python -m lf_testing.fakes.ollama --port 8794   # then OLLAMA_URL=http://127.0.0.1:8794
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from lf_testing.fakes.provider import FakeProvider, json_bytes, run


def line(document: Any) -> bytes:
    return json_bytes(document) + b"\n"


class FakeOllama(FakeProvider):
    name = "ollama"
    default_port = 8794
    stream_content_type = "application/x-ndjson"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat)

    def key_of(self, request: web.Request) -> str | None:
        return self.api_key  # Ollama has no keys

    def error(self, status: int, message: str | None = None) -> web.Response:
        return web.json_response({"error": message or f"fake error {status}"}, status=status)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        call, refusal = await self.admit(request)
        if refusal is not None:
            return refusal
        body = call.body
        if not body.get("model"):
            return self.error(400, "model is required")
        model = str(body["model"])
        if not body.get("stream", True):
            return web.json_response({**self._message(model, self.reply), **self._final()})
        return await self.stream(
            request,
            [],
            [line({**self._message(model, text), "done": False}) for text in self.deltas],
            [line({**self._message(model, ""), **self._final()})],
            malformed=b'{"model": "broken", "message": {"content": \n',
            in_stream_error=line({"error": "an error was encountered while running the model"}),
        )

    @staticmethod
    def _message(model: str, text: str) -> dict[str, Any]:
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"model": model, "created_at": created, "message": {"role": "assistant", "content": text}}

    def _final(self) -> dict[str, Any]:
        return {
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 100_000,
            "prompt_eval_count": self.usage.input_tokens,
            "prompt_eval_duration": 200_000,
            "eval_count": self.output_tokens,
            "eval_duration": 700_000,
        }


if __name__ == "__main__":
    run(FakeOllama)
