"""A fake OpenAI that answers at once: a stand-in until lf_testing.fakes.openai lands.

The helper building the providers writes ``libs/testing/src/lf_testing/fakes/openai.py`` (class
``FakeOpenAI``, ``python -m lf_testing.fakes.openai --port N``); execution_system.py runs that module
as soon as it exists and this file only until then, so the lead deletes this file at merge time.

Same command line: ``python tests/bench/execution_fake_openai.py --port N``. Serves ``POST
/v1/chat/completions`` in OpenAI's format, buffered or streamed (``stream: true``; with
``stream_options.include_usage`` a last chunk carries the usage), with no delay: the answer is
written as soon as the request is parsed, so what a benchmark measures through it is the proxy.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from aiohttp import web

WORDS = ["Hello", " from", " the", " fake", "."]
CONTENT = "".join(WORDS)


def _usage(body: dict[str, Any]) -> dict[str, int]:
    # Roughly a token per four characters of the prompt: realistic enough, and cheap.
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []) if isinstance(m, dict))
    prompt = max(1, chars // 4) + 3 * len(body.get("messages", []))
    return {"prompt_tokens": prompt, "completion_tokens": len(WORDS), "total_tokens": prompt + len(WORDS)}


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(
            {"error": {"message": "invalid JSON", "type": "invalid_request_error", "code": None}}, status=400
        )
    model = body.get("model", "gpt-4o-mini")
    base = {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model}
    usage = _usage(body)
    if not body.get("stream"):
        message = {"role": "assistant", "content": CONTENT, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return web.json_response({**base, "choices": [choice], "usage": usage})
    base["object"] = "chat.completion.chunk"
    frames = [_chunk(base, {"role": "assistant", "content": ""})]
    frames += [_chunk(base, {"content": word}) for word in WORDS]
    frames.append(_chunk(base, {}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(b"".join(frames))  # at once: one write, the whole stream
    await response.write_eof()
    return response


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/v1/chat/completions", chat_completions)
    return application


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    web.run_app(app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
