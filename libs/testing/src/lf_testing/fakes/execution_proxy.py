"""A fake execution-proxy ``POST /internal/executions`` (its real wire format: execution-proxy
``http/internal.py``), for services that execute through it (platform-api's run workers).

Idempotent per ``referenceId`` as the real one is: a repeated reference id is answered from the
first outcome (``replayed: true``; one still executing is waited for) and charged once
(``charges`` counts executions per id).
Knobs: ``credits`` per execution, ``reply(prompt) -> text``, ``fail_if(prompt) -> status | None``,
``fail_next`` (statuses to answer, in
order, before succeeding again), ``delay`` (seconds each execution takes), ``api_key``.
``stream: true`` is answered as the real one streams (``http/execute.py`` ``stream_sse``): ``start``,
a ``token`` per word of the reply, ``end``; ``stream_fails_after`` (a number of tokens) makes the
provider fail there: an ``error`` frame, then ``end`` when tokens went out (none: ``error`` alone).

    async with FakeExecutionProxy() as proxy:   # proxy.url: http://127.0.0.1:<port>
        ...
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from aiohttp import web


class FakeExecutionProxy:
    def __init__(self, *, api_key: str = "test-platform-key", credits: int = 3) -> None:
        self.api_key = api_key
        self.credits = credits
        self.reply: Callable[[str], str] = lambda prompt: f"echo: {prompt}"
        self.fail_next: list[int] = []
        self.fail_if: Callable[[str], int | None] = lambda prompt: None
        self.delay = 0.0
        self.stream_fails_after: int | None = None
        self.calls: list[dict[str, Any]] = []
        self.charges: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self._outcomes: dict[str, dict[str, Any]] = {}
        self._running: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeExecutionProxy:
        app = web.Application()
        app.router.add_post("/internal/executions", self._execute)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        for execution in list(self._running.values()):
            execution.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def prompts(self) -> list[str]:
        return [call["messages"][0]["content"] for call in self.calls]

    async def _execute(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-Platform-Api-Key") != self.api_key:
            return _error(401, "auth.invalid_platform_key", "bad X-Platform-Api-Key")
        body = await request.json()
        self.calls.append(body)
        reference = body.get("referenceId")
        if reference in self._outcomes:
            return web.json_response({"data": {**self._outcomes[reference], "replayed": True}})
        if reference in self._running:  # the same reference still executing: wait for its outcome
            outcome = await asyncio.shield(self._running[reference])
            return web.json_response({"data": {**outcome, "replayed": True}})
        prompt = body["messages"][0]["content"]
        if self.fail_next or self.fail_if(prompt):
            status = self.fail_next.pop(0) if self.fail_next else self.fail_if(prompt)
            return _error(
                status, "execute.provider_error" if status >= 500 else "validation_error", "fake failure"
            )
        if body.get("stream"):
            return await self._stream(request, body)
        # A task of its own: a caller that disconnects (or dies) does not stop an execution, as
        # with a real provider; it is recorded and charged all the same.
        execution = asyncio.ensure_future(self._run(body, reference))
        if reference:
            self._running[reference] = execution
        outcome = await asyncio.shield(execution)
        return web.json_response({"data": {**outcome, "replayed": False}})

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        execution_id = str(uuid4())
        await _sse(response, "start", {"run_id": execution_id})
        pieces = self.reply(body["messages"][-1]["content"]).split(" ")
        tokens = [piece + " " for piece in pieces[:-1]] + pieces[-1:]
        for sent, token in enumerate(tokens):
            if self.stream_fails_after is not None and sent >= self.stream_fails_after:
                await _sse(response, "error", {"message": "fake failure", "code": "execute.provider_failed"})
                if sent == 0:
                    return response
                break
            await _sse(response, "token", {"content": token})
        usage = {"input_tokens": 10, "output_tokens": len(tokens)}
        end = {
            "usage": usage,
            "credits_charged": self.credits,
            "balance_after": None,
            "execution_id": execution_id,
        }
        await _sse(response, "end", end)
        return response

    async def _run(self, body: dict[str, Any], reference: str | None) -> dict[str, Any]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        content = self.reply(body["messages"][0]["content"])
        outcome = {
            "content": content,
            "usage": {"input_tokens": 10, "output_tokens": len(content.split())},
            "usageSource": "provider",
            "provider": body["provider"],
            "model": body["model"],
            "creditsCharged": self.credits,
            "executionId": str(uuid4()),
        }
        if reference:
            self._outcomes[reference] = outcome
            self.charges[reference] += 1
            del self._running[reference]
        return outcome


async def _sse(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
