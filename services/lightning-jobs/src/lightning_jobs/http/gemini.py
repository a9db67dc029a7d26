"""Seed 002's Gemini routes under ``/api/gemini``: conversations (list, create, get with messages,
delete) and their messages (list; send, answered as server-sent events), through execution-proxy's
``gemini`` provider (``adapters/gemini.py``). Seed 002 puts no authentication on them: as in the
seed, the conversations are the service's, shared by whoever reaches it.

The send stream to the client is ``data: {"content": "..."}`` per piece of the answer, then
``data: {"done": true}``; a failure is ``data: {"error": "..."}`` and ends the stream. The user's
message is stored before the call, the assistant's once its answer is whole (a failed answer stores
nothing of it).

``POST /api/gemini/generate-image {prompt}`` -> ``{b64_json, mimeType}``: one image of
``GEMINI_IMAGE_MODEL`` through execution-proxy's ``/internal/executions/image`` (``service``
funding). Free, as seed 002 has it (no security, no 402), nothing stored.

Ours, where the seed is silent: sending a message and generating an image each take one of the
client IP's ``GEMINI_LIMIT_PER_HOUR`` (429 ``rate_limited`` past it, ``X-RateLimit-*`` headers on
every answer, as the demo's): the service's own Gemini account pays for every call, and an open
route with no limit would let anyone spend it."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

from aiohttp import web
from pydantic import Field

from lf_contracts import errors as codes
from lf_contracts.errors import ApiError
from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyUnavailable
from lf_web import RequestBody, parse_body
from lightning_jobs.http.client_ip import admit_per_ip
from lightning_jobs.http.jobs import answer
from lightning_jobs.http.keys import CONVERSATIONS, GEMINI, GEMINI_LIMIT

routes = web.RouteTableDef()

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HISTORY = 199  # execution-proxy takes at most 200 messages: the newest, with the one being sent
MAX_PROMPT_CHARS = 4000


class CreateConversationBody(RequestBody):
    title: str = Field(min_length=1, max_length=500)


class SendMessageBody(RequestBody):
    content: str = Field(min_length=1, max_length=20_000)
    model: str | None = Field(default=None, min_length=1, max_length=200)


class GenerateImageBody(RequestBody):
    # execution-proxy's limit on a prompt (seed 002 sets none): longer would be its 400 anyway.
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)


def _conversation_id(request: web.Request) -> int:
    """Seed 002's ids are integers: anything else names no conversation."""
    try:
        conversation_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError(codes.LIGHTNING_CONVERSATION_NOT_FOUND) from None
    if not 0 < conversation_id < 2**63:
        raise ApiError(codes.LIGHTNING_CONVERSATION_NOT_FOUND)
    return conversation_id


async def _existing(request: web.Request) -> dict[str, Any]:
    conversation = await request.app[CONVERSATIONS].get(_conversation_id(request))
    if conversation is None:
        raise ApiError(codes.LIGHTNING_CONVERSATION_NOT_FOUND)
    return conversation


def conversation_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "createdAt": row["created_at"]}


def message_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "conversationId": row["conversation_id"],
        "role": row["role"],
        "content": row["content"],
        "createdAt": row["created_at"],
    }


@routes.get("/api/gemini/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    return answer([conversation_view(row) for row in await request.app[CONVERSATIONS].all()])  # type: ignore[arg-type]


@routes.post("/api/gemini/conversations")
async def create_conversation(request: web.Request) -> web.Response:
    body = await parse_body(request, CreateConversationBody)
    return answer(conversation_view(await request.app[CONVERSATIONS].create(body.title)), 201)


@routes.get("/api/gemini/conversations/{id}")
async def get_conversation(request: web.Request) -> web.Response:
    conversation = await _existing(request)
    messages = await request.app[CONVERSATIONS].messages(conversation["id"])
    return answer({**conversation_view(conversation), "messages": [message_view(row) for row in messages]})


@routes.delete("/api/gemini/conversations/{id}")
async def delete_conversation(request: web.Request) -> web.Response:
    if not await request.app[CONVERSATIONS].delete(_conversation_id(request)):
        raise ApiError(codes.LIGHTNING_CONVERSATION_NOT_FOUND)
    return web.Response(status=204)


@routes.get("/api/gemini/conversations/{id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    conversation = await _existing(request)
    rows = await request.app[CONVERSATIONS].messages(conversation["id"])
    return answer([message_view(row) for row in rows])  # type: ignore[arg-type]


@routes.post("/api/gemini/conversations/{id}/messages")
async def send_message(request: web.Request) -> web.StreamResponse:
    await admit_per_ip(request, request.app[GEMINI_LIMIT], "lightning.gemini")
    conversation = await _existing(request)
    body = await parse_body(request, SendMessageBody)
    store, gemini = request.app[CONVERSATIONS], request.app[GEMINI]
    if await store.add_message(conversation["id"], "user", body.content) is None:
        raise ApiError(codes.LIGHTNING_CONVERSATION_NOT_FOUND)  # deleted meanwhile
    history = await store.messages(conversation["id"])
    prompt = [{"role": row["role"], "content": row["content"]} for row in history[-HISTORY:]]

    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    pieces: list[str] = []
    try:
        # aclosing: a client that leaves closes the call to execution-proxy too, at once.
        async with aclosing(gemini.chat.stream(body.model or gemini.model, prompt)) as stream:
            async for piece in stream:
                pieces.append(piece)
                await response.write(_frame({"content": piece}))
    except (ExecutionFailed, ExecutionProxyUnavailable) as failure:
        await response.write(_frame({"error": f"Gemini failed: {failure}"}))
        return response
    except ConnectionError:
        return response  # the client left: nobody reads the answer, so none is kept
    await store.add_message(conversation["id"], "assistant", "".join(pieces))
    await response.write(_frame({"done": True}))
    return response


@routes.post("/api/gemini/generate-image")
async def generate_image(request: web.Request) -> web.Response:
    await admit_per_ip(request, request.app[GEMINI_LIMIT], "lightning.gemini")
    body = await parse_body(request, GenerateImageBody)
    if not body.prompt.strip():
        raise ApiError(codes.VALIDATION_ERROR, "prompt: must not be blank")
    failed = codes.LIGHTNING_IMAGE_GENERATION_FAILED
    try:
        image = await request.app[GEMINI].images.generate(body.prompt)
    except ExecutionFailed as failure:
        if failure.code == codes.VALIDATION_ERROR.code:  # the prompt execution-proxy refused
            raise ApiError(codes.VALIDATION_ERROR, f"prompt: {failure.message}") from None
        raise ApiError(failed, f"{failed.message}: {failure.message}") from None
    except ExecutionProxyUnavailable:
        raise ApiError(failed, f"{failed.message}: execution-proxy unavailable") from None
    return answer({"b64_json": image.b64_json, "mimeType": image.mime_type})


def _frame(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
