"""What lensers call through the gateway, with their Supabase JWT: an execution on their credits
(buffered or streamed) or on their own stored key.

Bodies are written as seed 000 shows them (``max_tokens``, ``key_ref_id``); camelCase is accepted
too. Checks run in the order that costs least first: the rate limit, the body, the messages, the
model and its price, and only then the wallet.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import Field, StrictInt

from execution_proxy.application.detached import Detached
from execution_proxy.application.executions import ChatOrder, ChatOutcome, ChatStream, Prepared
from execution_proxy.domain.messages import sanitize
from execution_proxy.http.keys import EXECUTIONS, RATE_LIMITER
from lf_contracts.errors import EXECUTE_CANCELLED, EXECUTE_PROVIDER_FAILED
from lf_web import REQUEST_ID, RequestBody, enforce, event_metadata, ok, parse_body, require_user

routes = web.RouteTableDef()
PROVIDER_FAILED = EXECUTE_PROVIDER_FAILED.code

# Per lenser per minute (seed 000): shared by every replica (the limiter is in PostgreSQL).
EXECUTIONS_PER_MINUTE = 100
MAX_TOKENS_LIMIT = 1_000_000


class ExecuteRequest(RequestBody):
    provider: str = Field(min_length=1, max_length=40)
    model: str = Field(min_length=1, max_length=200)
    messages: Any = None  # sanitized by the domain, answered as execute.invalid_messages
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0, le=2)
    lens_id: str | None = Field(default=None, max_length=200)
    version_id: str | None = Field(default=None, max_length=200)


class ByokRequest(ExecuteRequest):
    key_ref_id: UUID


def usage_view(outcome: ChatOutcome) -> dict[str, int]:
    return {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens}


def outcome_view(outcome: ChatOutcome) -> dict[str, Any]:
    return {
        "content": outcome.content,
        "usage": usage_view(outcome),
        "usageSource": outcome.usage_source,
        "provider": outcome.provider,
        "model": outcome.model,
        "creditsCharged": outcome.credits_charged,
        "executionId": outcome.execution_id,
    }


async def admit(request: web.Request) -> UUID:
    """The calling lenser, once the executions' rate limit lets the request in: one budget for every
    execution route (``/execute/openai/v1`` included), so no route is a way around it."""
    lenser_id = await require_user(request)
    await enforce(request, request.app[RATE_LIMITER], f"execute:{lenser_id}", EXECUTIONS_PER_MINUTE)
    return lenser_id


async def _order(request: web.Request, *, byok: bool) -> ChatOrder:
    # The caller's own key pays on /execute/byok: the provider's limits on that key are the limit
    # (seed 000 sets none for it), and the platform adds no database round trip to its latency.
    lenser_id = await (require_user(request) if byok else admit(request))
    body = await parse_body(request, ByokRequest if byok else ExecuteRequest)
    messages = sanitize(body.messages)
    return ChatOrder(
        funding="user_byok_cloud" if byok else "platform_credit",
        provider=body.provider,
        model=body.model,
        messages=messages,
        lenser_id=lenser_id,
        payer_id=None if byok else lenser_id,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        key_id=body.key_ref_id if isinstance(body, ByokRequest) else None,
    )


async def _prepare(request: web.Request, order: ChatOrder) -> Prepared | ChatOutcome:
    return await request.app[EXECUTIONS].prepare(
        order, request_id=request[REQUEST_ID], metadata=event_metadata(request, f"lenser:{order.lenser_id}")
    )


async def _answer(request: web.Request, order: ChatOrder) -> web.Response:
    prepared = await _prepare(request, order)
    if isinstance(prepared, ChatOutcome):
        return ok(request, outcome_view(prepared))
    return ok(request, outcome_view(await request.app[EXECUTIONS].complete(prepared)))


@routes.post("/execute/wallet")
async def execute_on_credits(request: web.Request) -> web.Response:
    return await _answer(request, await _order(request, byok=False))


@routes.post("/execute/byok")
async def execute_on_own_key(request: web.Request) -> web.Response:
    return await _answer(request, await _order(request, byok=True))


@routes.post("/execute/stream")
async def execute_streamed(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``start``, ``token``s, then ``end`` (or ``error``). Everything refused
    before the first frame is an ordinary JSON error; after it, an ``error`` frame."""
    prepared = await _prepare(request, await _order(request, byok=False))
    if isinstance(prepared, ChatOutcome):  # a retried reference: no orders carry one here
        return ok(request, outcome_view(prepared))
    return await stream_sse(request, request.app[EXECUTIONS].stream(prepared))


SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
CLIENT_CHECK_SECONDS = 0.05
"""How often a stream looks whether its client is still connected (while the provider is silent,
nothing is written, so a write cannot tell)."""


async def stream_sse(request: web.Request, stream: ChatStream) -> web.StreamResponse:
    """``stream`` as server-sent events: ``start``, a ``token`` per text, then ``end`` with the
    charge. A provider failure before the first token is an ``error`` frame alone (nothing was
    charged). A failure after some tokens is ``error`` then ``end``: the client received those
    tokens and is charged for them, and ``end`` says how much.

    A client that goes away is noticed at once, even while the provider is silent (``ClientWatch``),
    and the provider's stream is stopped. The settlement runs however the handler ends, even
    cancelled by a server shutting down (``ChatStream.finish`` is shielded)."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    watch = ClientWatch(request)
    async with stream:
        try:
            with watch:
                try:
                    await response.prepare(request)
                    await response.write(sse("start", {"run_id": str(stream.prepared.execution_id)}))
                    async for text in stream:
                        await response.write(sse("token", {"content": text}))
                except ConnectionError:  # the client went away (aiohttp raises ClientConnectionResetError)
                    watch.left = True
                except asyncio.CancelledError:
                    if not watch.absorb_cancellation():
                        raise  # the server stopping, or aiohttp seeing the client leave: settled anyway
        finally:
            if watch.left or watch.connection_lost():
                await stream.client_gone()
        outcome = await stream.finish()
    if watch.left:
        return response  # nobody to tell; the charge is recorded and reaches the wallet
    for frame in ending(stream, outcome):
        await _write_quietly(response, frame)
    return response


def ending(stream: ChatStream, outcome: ChatOutcome | None, **extra: Any) -> list[bytes]:
    """The last frames of a stream: ``error`` when the provider failed (or, nothing charged, the
    stream was cancelled before the provider was asked), then ``end`` when something was charged."""
    frames = []
    if outcome is None and stream.cancelled:
        frames.append(sse("error", {"message": EXECUTE_CANCELLED.message, "code": EXECUTE_CANCELLED.code}))
    elif outcome is None or stream.failure is not None:
        message = str(stream.failure) if stream.failure else EXECUTE_PROVIDER_FAILED.message
        frames.append(sse("error", {"message": message, "code": PROVIDER_FAILED}))
    if outcome is not None:
        frames.append(sse("end", end_view(outcome, **extra)))
    return frames


def end_view(outcome: ChatOutcome, **extra: Any) -> dict[str, Any]:
    return {
        "usage": usage_view(outcome),
        "credits_charged": outcome.credits_charged,
        "balance_after": outcome.balance_after,
        "execution_id": str(outcome.execution_id),
        "cancelled": outcome.cancelled,
        "cut_short": outcome.cut_short,
        **extra,
    }


async def follow_sse(request: web.Request, detached: Detached) -> web.StreamResponse:
    """A detached execution (``application/detached.py``) as the frames of ``stream_sse``, from its
    first token whenever the client joined, with ``replayed: false`` in ``end``. A client that goes
    away changes nothing for the execution: it runs on, and is recorded and charged as usual."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    watch = ClientWatch(request)
    with watch:
        try:
            await response.prepare(request)
            await response.write(sse("start", {"run_id": str(detached.execution_id)}))
            async for text in detached.texts():
                await response.write(sse("token", {"content": text}))
            outcome = await detached.outcome()
        except ConnectionError:
            return response
        except asyncio.CancelledError:
            if not watch.absorb_cancellation():
                raise  # the server stopping: the execution is drained, not cut short
            return response
    for frame in ending(detached.stream, outcome, replayed=False):
        await _write_quietly(response, frame)
    return response


async def replay_sse(request: web.Request, outcome: ChatOutcome) -> web.StreamResponse:
    """A recorded execution as frames: ``start``, one ``token`` with the whole kept content (empty
    once pruned), ``end`` with ``replayed: true``. Nothing runs or is charged again."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    await _write_quietly(response, sse("start", {"run_id": str(outcome.execution_id)}))
    await _write_quietly(response, sse("token", {"content": outcome.content}))
    await _write_quietly(response, sse("end", end_view(outcome, replayed=True)))
    return response


class ClientWatch:
    """Notices a streaming client leaving, and interrupts the task serving it.

    aiohttp does not cancel a handler whose client left (unless ``handler_cancellation`` is on, as
    in its test server), and a write only fails once something is written. So, while the ``with``
    block runs, a small task checks the connection every ``CLIENT_CHECK_SECONDS``; when it is gone,
    it cancels the serving task (wherever it waits: on the provider, on a write), and the handler
    absorbs that cancellation (``absorb_cancellation``). Leaving the block stops the watch at once,
    so no interruption comes after it.
    """

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.left = False
        """The client went away (seen by the watch, or by a write that failed)."""
        self._served = asyncio.current_task()
        self._interrupted = False
        self._watch: asyncio.Task[None] | None = None

    def __enter__(self) -> ClientWatch:
        self._watch = asyncio.create_task(self._watch_connection())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._watch is not None
        self._watch.cancel()

    def connection_lost(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    def absorb_cancellation(self) -> bool:
        """Whether the cancellation that reached the served task was the watch's own (then it is
        absorbed); False when anyone else cancelled it too (re-raise it)."""
        if not self._interrupted:
            return False
        assert self._served is not None
        return self._served.uncancel() == 0

    async def _watch_connection(self) -> None:
        while True:
            await asyncio.sleep(CLIENT_CHECK_SECONDS)
            if self.connection_lost():
                self.left = True
                # Unless someone cancelled it already (aiohttp does, where ``handler_cancellation``
                # is on, as in its test server): once is enough.
                if self._served is not None and not self._served.cancelling():
                    self._interrupted = True
                    self._served.cancel()
                return


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _write_quietly(response: web.StreamResponse, frame: bytes) -> None:
    try:
        await response.write(frame)
    except ConnectionError:
        pass  # settled already; the client just did not stay for the last frame
