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
provider fail there: an ``error`` frame, then ``end`` when tokens went out (none: ``error`` alone);
``token_delay`` paces the tokens. ``POST /internal/executions/cancel`` as the real one answers it
(``cancels`` lists the calls): a stream running under the reference stops at its next token and ends
with ``cancelled: true`` (``state: cancelled``); an ended reference answers ``ended``; an unknown one
``pending``, and a later execution with it is refused 409 ``execute.cancelled``.

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
        self.token_delay = 0.0
        self.calls: list[dict[str, Any]] = []
        self.cancels: list[dict[str, Any]] = []
        self._cancelled: set[str] = set()
        self._streams: dict[str, asyncio.Future[dict[str, Any]]] = {}
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
        app.router.add_post("/internal/executions/cancel", self._cancel)
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
            if body.get("stream"):
                return await self._replay(request, self._outcomes[reference])
            return web.json_response({"data": {**self._outcomes[reference], "replayed": True}})
        if reference in self._cancelled:
            return _error(409, "execute.cancelled", "this referenceId was cancelled")
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
        reference = body.get("referenceId")
        ended: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        if reference:
            self._streams[reference] = ended
        try:
            await _sse(response, "start", {"run_id": execution_id})
            pieces = self.reply(body["messages"][-1]["content"]).split(" ")
            tokens = [piece + " " for piece in pieces[:-1]] + pieces[-1:]
            sent, cancelled, failed = 0, False, False
            while sent < len(tokens):
                if self.stream_fails_after is not None and sent >= self.stream_fails_after:
                    failed = True
                    failure = {"message": "fake failure", "code": "execute.provider_failed"}
                    await _sse(response, "error", failure)
                    if sent == 0:
                        return response
                    break
                if reference in self._cancelled:
                    cancelled = True
                    break
                await _sse(response, "token", {"content": tokens[sent]})
                sent += 1
                await asyncio.sleep(self.token_delay)
            usage = {"input_tokens": 10, "output_tokens": sent}
            record = {
                "content": "".join(tokens[:sent]),
                "usage": usage,
                "usageSource": "counted",
                "provider": body["provider"],
                "model": body["model"],
                "creditsCharged": self.credits,
                "executionId": execution_id,
                "cancelled": cancelled,
            }
            if reference and not failed:  # a failed attempt is not replayed (the real one: 502)
                self._outcomes[reference] = record
                ended.set_result(record)
            end = {
                "usage": usage,
                "credits_charged": self.credits,
                "balance_after": None,
                "execution_id": execution_id,
                "cancelled": cancelled,
                "replayed": False,
            }
            await _sse(response, "end", end)
            return response
        finally:
            if reference:
                self._streams.pop(reference, None)
                if not ended.done():
                    ended.set_result(None)

    async def _replay(self, request: web.Request, record: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await _sse(response, "start", {"run_id": record["executionId"]})
        await _sse(response, "token", {"content": record["content"]})
        end = {
            "usage": record["usage"],
            "credits_charged": record["creditsCharged"],
            "balance_after": None,
            "execution_id": record["executionId"],
            "cancelled": record.get("cancelled", False),
            "replayed": True,
        }
        await _sse(response, "end", end)
        return response

    async def _cancel(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Platform-Api-Key") != self.api_key:
            return _error(401, "auth.invalid_platform_key", "bad X-Platform-Api-Key")
        body = await request.json()
        self.cancels.append(body)
        reference = body["referenceId"]
        record: dict[str, Any] | None = self._outcomes.get(reference)
        state = "pending"
        if record is None:
            self._cancelled.add(reference)
            if reference in self._streams:
                record = await asyncio.shield(self._streams[reference])
                state = "ended"  # failed meanwhile, when no record came
        if record is not None:
            state = "cancelled" if record.get("cancelled") else "ended"
        data = {
            "referenceId": reference,
            "executionId": record["executionId"] if record else str(uuid4()),
            "state": state,
            "execution": {"status": "succeeded", **record} if record else None,
        }
        return web.json_response({"data": data})

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
