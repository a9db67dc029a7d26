"""A fake execution-proxy ``POST /internal/executions`` and ``POST /internal/executions/cancel``
(their real wire format: execution-proxy ``http/internal.py``, and the wire agreed for streamed
node executions and cancel), for services that execute through it (platform-api's run workers,
lightning-jobs).

Idempotent per ``referenceId`` as the real one is: a repeated reference id is answered from the
first outcome (``replayed: true``) and charged once (``charges`` counts executions per id); one
still executing is attached to (a stream gets every token from the first). An execution is
DETACHED from the connection that asked for it: a caller that leaves (or dies) does not stop it,
it is recorded and charged all the same, as with a real provider.

Knobs: ``credits`` per execution, ``reply(prompt) -> text``, ``fail_if(prompt) -> status | None``,
``fail_next`` (statuses to answer, in order, before succeeding again; a provider failure, any
5xx but 503, is recorded for its reference, which is answered with that failure for ever after, as
the real one answers "an earlier attempt with this reference failed"), ``delay`` (seconds each
execution takes, spread over its tokens; ``delay_of(prompt) -> seconds | None`` says it per
prompt), ``token_delay`` (seconds more before each token), ``api_key``. ``stream: true`` is
answered as the real one streams (``http/execute.py`` ``stream_sse``): ``start``, a ``token`` per
word of the reply, ``end`` (``cancelled``: whether a cancel stopped it); ``stream_fails_after`` (a
number of tokens) makes the provider fail there: an ``error`` frame, then ``end`` when tokens went
out (none: ``error`` alone); ``cut_next`` (token counts, in order, one per execution started) makes
the proxy stop there as a shutdown past its drain does: the execution is recorded ``cutShort``
(charged for what it produced) and its streams break off without ``end``; ``elsewhere_next`` (a
count) refuses that many new executions 409 ``execute.running_elsewhere`` first, as a replica does
while another one runs the reference.

Cancel (``{funding, lenserId?, sponsorId?, referenceId}``): a running execution stops and is
recorded ``cancelled`` with ``credits * tokens produced // tokens in all`` (``state: "cancelled"``);
one that ended is answered ``ended`` with its record; an unknown reference is kept (``pending``)
and a later execution of it refused 409 ``execute.cancelled``. ``recorded[referenceId]`` is the
record of each reference (what it was charged: ``creditsCharged``); ``cancels`` the references
asked to cancel, in order.

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


class _Execution:
    """One execution of the fake provider: its tokens as they are produced, then its outcome."""

    def __init__(self, body: dict[str, Any], reference: str | None, tokens: list[str]) -> None:
        self.body, self.reference, self.all_tokens = body, reference, tokens
        self.execution_id = str(uuid4())
        self.tokens: list[str] = []
        self.outcome: dict[str, Any] | None = None
        self.failure: dict[str, Any] | None = None  # an ``error`` frame's data
        self.finished = asyncio.Event()
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.delay = 0.0
        self.cut_after: int | None = None
        self.broken = False  # the proxy stopped under it: its streams break off without ``end``

    def produced(self, token: str) -> None:
        self.tokens.append(token)
        self._poke()

    def end(self) -> None:
        self.finished.set()
        self._poke()

    def _poke(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def change(self) -> asyncio.Event:
        """Set at the next token or at the end."""
        return self._changed


class FakeExecutionProxy:
    def __init__(self, *, api_key: str = "test-platform-key", credits: int = 3) -> None:
        self.api_key = api_key
        self.credits = credits
        self.reply: Callable[[str], str] = lambda prompt: f"echo: {prompt}"
        self.fail_next: list[int] = []
        self.fail_if: Callable[[str], int | None] = lambda prompt: None
        self.delay = 0.0
        self.delay_of: Callable[[str], float | None] = lambda prompt: None
        self.token_delay = 0.0
        self.stream_fails_after: int | None = None
        self.cut_next: list[int] = []
        self.elsewhere_next = 0
        self.calls: list[dict[str, Any]] = []
        self.charges: Counter[str] = Counter()
        self.recorded: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, int] = {}
        """The references whose execution failed (the provider's), and the status answered."""
        self.cancels: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._running: dict[str, _Execution] = {}
        self._cancelled_early: set[str] = set()
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
            if execution.task is not None:
                execution.task.cancel()
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
        stream = bool(body.get("stream"))
        if reference in self.recorded:
            outcome = {**self.recorded[reference], "replayed": True}
            return await self._replay(request, outcome) if stream else web.json_response({"data": outcome})
        if reference in self.failed:
            message = "an earlier attempt with this reference failed"
            return _error(self.failed[reference], "execute.provider_error", message)
        if reference in self._cancelled_early:
            return _error(409, "execute.cancelled", "this execution was cancelled before it started")
        execution = self._running.get(reference) if reference else None
        if execution is None and self.elsewhere_next:
            self.elsewhere_next -= 1
            return _error(409, "execute.running_elsewhere", "this referenceId runs on another replica")
        if execution is None:
            prompt = body["messages"][-1 if stream else 0]["content"]
            if self.fail_next or self.fail_if(prompt):
                status = self.fail_next.pop(0) if self.fail_next else self.fail_if(prompt)
                assert status is not None
                if reference and status >= 500 and status != 503:  # 503: not asked, so not recorded
                    self.failed[reference] = status
                code = "execute.provider_error" if status >= 500 else "validation_error"
                return _error(status, code, "fake failure")
            pieces = self.reply(prompt).split(" ")
            execution = _Execution(body, reference, [piece + " " for piece in pieces[:-1]] + pieces[-1:])
            execution.delay = self.delay_of(prompt) if self.delay_of(prompt) is not None else self.delay
            execution.cut_after = self.cut_next.pop(0) if self.cut_next else None
            if reference:
                self._running[reference] = execution
            execution.task = asyncio.ensure_future(self._run(execution))
        if stream:
            return await self._stream(request, execution)
        await execution.finished.wait()
        if execution.outcome is None:
            return _error(502, "execute.provider_failed", "fake failure")
        replayed = execution.body is not body
        return web.json_response({"data": {**execution.outcome, "replayed": replayed}})

    async def _stream(self, request: web.Request, execution: _Execution) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sent = 0
        try:
            await _sse(response, "start", {"run_id": execution.execution_id})
            while True:
                changed = execution.change()
                while sent < len(execution.tokens):
                    await _sse(response, "token", {"content": execution.tokens[sent]})
                    sent += 1
                if execution.finished.is_set():
                    break
                await changed.wait()
            if execution.broken:
                return response  # the proxy stopped: no end frame
            if execution.failure is not None:
                await _sse(response, "error", execution.failure)
            if execution.outcome is not None:
                await _sse(response, "end", _end(execution.outcome))
        except ConnectionError:
            pass  # the caller left: the execution runs on (detached)
        return response

    async def _replay(self, request: web.Request, outcome: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await _sse(response, "start", {"run_id": outcome["executionId"]})
        if outcome["content"]:
            await _sse(response, "token", {"content": outcome["content"]})
        await _sse(response, "end", {**_end(outcome), "replayed": True})
        return response

    async def _run(self, execution: _Execution) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        tokens = execution.all_tokens
        try:
            for count, token in enumerate(tokens):
                if self.stream_fails_after is not None and count >= self.stream_fails_after:
                    execution.failure = {"message": "fake failure", "code": "execute.provider_failed"}
                    if count:  # tokens went out: charged for them, not recorded as a result
                        execution.outcome = self._outcome(execution, cancelled=False, cut_short=True)
                    return
                if count == execution.cut_after:
                    execution.broken = True
                    self._record(execution, cancelled=False, cut_short=True)
                    return
                await asyncio.sleep(execution.delay / len(tokens) + self.token_delay)
                execution.produced(token)
            self._record(execution, cancelled=False)
        except asyncio.CancelledError:
            self._record(execution, cancelled=True)  # cancelled: charged for what it produced
        finally:
            self.in_flight -= 1
            if execution.reference:
                self._running.pop(execution.reference, None)
            execution.end()

    def _outcome(self, execution: _Execution, *, cancelled: bool, cut_short: bool = False) -> dict[str, Any]:
        content = "".join(execution.tokens)
        produced, total = len(execution.tokens), len(execution.all_tokens)
        return {
            "content": content,
            "usage": {"input_tokens": 10, "output_tokens": produced},
            "usageSource": "provider",
            "provider": execution.body["provider"],
            "model": execution.body["model"],
            "creditsCharged": self.credits * produced // total if cancelled or cut_short else self.credits,
            "executionId": execution.execution_id,
            "cancelled": cancelled,
            "cutShort": cancelled or cut_short,
        }

    def _record(self, execution: _Execution, *, cancelled: bool, cut_short: bool = False) -> None:
        execution.outcome = self._outcome(execution, cancelled=cancelled, cut_short=cut_short)
        if execution.reference:
            self.recorded[execution.reference] = execution.outcome
            self.charges[execution.reference] += 1

    async def _cancel(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Platform-Api-Key") != self.api_key:
            return _error(401, "auth.invalid_platform_key", "bad X-Platform-Api-Key")
        body = await request.json()
        reference = body.get("referenceId")
        if not reference:
            return _error(400, "validation_error", "referenceId is required")
        self.cancels.append(reference)
        state = "ended"
        if reference in self._running:
            execution = self._running[reference]
            if execution.task is not None:
                execution.task.cancel()
            await execution.finished.wait()
            state = "cancelled"
        elif reference not in self.recorded:
            self._cancelled_early.add(reference)
            state = "pending"
        data = {
            "referenceId": reference,
            "executionId": (self.recorded.get(reference) or {}).get("executionId"),
            "state": state,
            "execution": self.recorded.get(reference),
        }
        return web.json_response({"data": data})


def _end(outcome: dict[str, Any]) -> dict[str, Any]:
    return {
        "usage": outcome["usage"],
        "credits_charged": outcome["creditsCharged"],
        "balance_after": None,
        "execution_id": outcome["executionId"],
        "cancelled": outcome.get("cancelled", False),
        "cut_short": outcome.get("cutShort", False),
    }


async def _sse(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
