"""The OpenAI-compatible surface: the official ``openai`` SDKs work unchanged with
``base_url=<gateway>/execute/openai/v1`` and the lenser's JWT as ``api_key``.

``POST /chat/completions`` is ``/execute/wallet`` (and ``/execute/stream``) in OpenAI's words: the
same order (funding platform_credit, the lenser pays), the same use case, the same rate limit key
(one budget of 100/min however the lenser calls), the same charge. ``model`` is a key of our
catalogue and its provider is the model's. ``GET /models`` lists the active chat models.

These routes answer in OpenAI's shapes, never in the envelope, errors included: each handler is
wrapped by ``openai_errors``, which turns an ``ApiError`` or a domain refusal into
``{"error": {message, type, param, code}}`` with the code's own status. ``code`` is our catalogue
code (``execute.model_not_found``, ``wallet.insufficient_balance``) so a client can tell the cases
apart; ``type`` is OpenAI's classification of it (``openai_shapes.error_type``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from execution_proxy.application.executions import ChatOrder, Prepared
from execution_proxy.domain.catalogue import Catalogue
from execution_proxy.domain.messages import sanitize
from execution_proxy.http import openai_shapes as shapes
from execution_proxy.http.errors import CODES
from execution_proxy.http.execute import admit
from execution_proxy.http.keys import CATALOGUE, EXECUTIONS
from lf_contracts.errors import (
    EXECUTE_MODEL_NOT_FOUND,
    EXECUTE_PROVIDER_FAILED,
    INTERNAL_ERROR,
    NOT_FOUND,
    VALIDATION_ERROR,
    ApiError,
)
from lf_web import REQUEST_ID, event_metadata, parse_body, require_user
from lf_web.envelope import dumps
from lf_web.errors import domain_errors_middleware

routes = web.RouteTableDef()
PREFIX = "/execute/openai/v1"
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

log = structlog.get_logger(__name__)
_refusals_as_api_errors = domain_errors_middleware(CODES)


def openai_errors(handler: Handler) -> Handler:
    """Answer whatever the handler refuses in OpenAI's error shape instead of the envelope (the kit's
    middlewares around it then see an ordinary answer)."""

    @functools.wraps(handler)
    async def answered_as_openai(request: web.Request) -> web.StreamResponse:
        try:
            return await _refusals_as_api_errors(request, handler)
        except ApiError as refused:
            return _error_response(refused)
        except web.HTTPRequestEntityTooLarge:
            return _error_response(ApiError(VALIDATION_ERROR, "Request body is too large"))
        except Exception:
            log.exception("http.unhandled_error", method=request.method, path=request.path)
            return _error_response(ApiError(INTERNAL_ERROR))

    return answered_as_openai


def _error_response(refused: ApiError) -> web.Response:
    body, headers = shapes.error_body(refused)
    return web.json_response(body, status=refused.error.status, headers=headers, dumps=dumps)


def _json(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, dumps=dumps)


@routes.post(f"{PREFIX}/chat/completions")
@openai_errors
async def chat_completions(request: web.Request) -> web.StreamResponse:
    # The order of /execute/wallet: who and how often first, then the body, the messages, the
    # model and its price, and only then the wallet.
    lenser_id = await admit(request)
    body = await parse_body(request, shapes.ChatCompletionRequest)
    shapes.refuse_what_we_cannot_honour(body)
    messages = sanitize(shapes.chat_messages(body.messages))
    model = (await request.app[CATALOGUE].current()).model(body.model)
    order = ChatOrder(
        funding="platform_credit",
        provider=model.provider,
        model=model.key,
        messages=messages,
        lenser_id=lenser_id,
        payer_id=lenser_id,
        max_tokens=body.token_limit(),
        temperature=body.temperature,
    )
    executions = request.app[EXECUTIONS]
    prepared = await executions.prepare(
        order, request_id=request[REQUEST_ID], metadata=event_metadata(request, f"lenser:{lenser_id}")
    )
    assert isinstance(prepared, Prepared), "no reference id on this route, so never a replay"
    completion = shapes.Completion(
        prepared.execution_id, int(time.time()), model.key, prepared.request.max_tokens
    )
    if body.stream:
        return await _stream(request, prepared, completion, include_usage=body.include_usage())
    return _json(completion.whole(await executions.complete(prepared)))


async def _stream(
    request: web.Request, prepared: Prepared, completion: shapes.Completion, *, include_usage: bool
) -> web.StreamResponse:
    """``chat.completion.chunk``s as server-sent ``data:`` lines: the role, the deltas, the finish
    reason, the usage with the credits charged (when asked for), ``[DONE]``.

    The answer starts with the provider's first token, so a provider that fails before it gets an
    ordinary 502 the SDK can retry; after it, the failure is a ``data: {"error": ...}`` line (which
    the SDK raises), preceded by the usage of what was produced and charged."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    async with request.app[EXECUTIONS].stream(prepared) as stream:
        pieces = aiter(stream)
        first = await anext(pieces, None)
        if first is None and stream.failure is not None:
            await stream.finish()  # recorded as failed: nothing charged, the reservation released
            raise ApiError(EXECUTE_PROVIDER_FAILED, str(stream.failure))
        try:
            await response.prepare(request)
            await response.write(completion.role_chunk(include_usage))
            if first is not None:
                await response.write(completion.delta_chunk(first, include_usage))
                async for text in pieces:
                    await response.write(completion.delta_chunk(text, include_usage))
        except ConnectionError:  # the client went away: the provider is stopped, what it made charged
            await stream.client_gone()
            return response
        outcome = await stream.finish()
    frames: list[bytes] = []
    if outcome is not None and stream.failure is None:
        frames.append(completion.finish_chunk(outcome, include_usage))
    if outcome is not None and include_usage:
        frames.append(completion.usage_chunk(outcome))
    if stream.failure is not None or outcome is None:
        failure = ApiError(EXECUTE_PROVIDER_FAILED, str(stream.failure) if stream.failure else None)
        frames.append(shapes.data_line(shapes.error_body(failure)[0]))
    else:
        frames.append(shapes.DONE)
    with contextlib.suppress(ConnectionError):  # settled already; the client just did not stay
        await response.write(b"".join(frames))
    return response


@routes.get(f"{PREFIX}/models")
@openai_errors
async def list_models(request: web.Request) -> web.Response:
    await require_user(request)
    catalogue = await request.app[CATALOGUE].current()
    return _json({"object": "list", "data": [_model_view(catalogue, key) for key in _chat_models(catalogue)]})


@routes.get(f"{PREFIX}/models/{{model:.+}}")
@openai_errors
async def retrieve_model(request: web.Request) -> web.Response:
    await require_user(request)
    catalogue = await request.app[CATALOGUE].current()
    key = request.match_info["model"]
    if key not in _chat_models(catalogue):
        raise ApiError(EXECUTE_MODEL_NOT_FOUND, f"no active model {key!r} in the catalogue")
    return _json(_model_view(catalogue, key))


@routes.route("*", f"{PREFIX}/{{tail:.*}}")
@openai_errors
async def unknown_route(request: web.Request) -> web.Response:
    """Anything else under the prefix (embeddings, a GET of chat/completions) as OpenAI answers it:
    a 404 in its shape, not the envelope."""
    raise ApiError(NOT_FOUND, f"Invalid URL ({request.method} {request.path})")


def _chat_models(catalogue: Catalogue) -> list[str]:
    """The models ``chat/completions`` can run: active, priced per token (images are elsewhere)."""
    return sorted(key for key, m in catalogue.models.items() if m.active and m.unit_type == "tokens")


def _model_view(catalogue: Catalogue, key: str) -> dict[str, Any]:
    # ``created``: the catalogue keeps no creation time; the first price's start is when the model
    # became usable, which is what a client sorting by it wants.
    prices = catalogue.prices.get(key) or []
    created = int(prices[0].effective_from.timestamp()) if prices else 0
    return {"id": key, "object": "model", "created": created, "owned_by": catalogue.models[key].provider}
