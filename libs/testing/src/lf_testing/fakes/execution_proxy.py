"""A fake execution-proxy ``POST /internal/executions`` (its real wire format: execution-proxy
``http/internal.py``), for services that execute through it (platform-api's run workers).

Idempotent per ``referenceId`` as the real one is: a repeated reference id is answered from the
first outcome (``replayed: true``; one still executing is waited for) and charged once
(``charges`` counts executions per id).
Knobs: ``credits`` per execution, ``reply(prompt) -> text``, ``fail_if(prompt) -> status | None``,
``fail_next`` (statuses to answer, in
order, before succeeding again), ``delay`` (seconds each execution takes), ``api_key``.

    async with FakeExecutionProxy() as proxy:   # proxy.url: http://127.0.0.1:<port>
        ...
"""

from __future__ import annotations

import asyncio
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

    async def _execute(self, request: web.Request) -> web.Response:
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
        # A task of its own: a caller that disconnects (or dies) does not stop an execution, as
        # with a real provider; it is recorded and charged all the same.
        execution = asyncio.ensure_future(self._run(body, reference))
        if reference:
            self._running[reference] = execution
        outcome = await asyncio.shield(execution)
        return web.json_response({"data": {**outcome, "replayed": False}})

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


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
