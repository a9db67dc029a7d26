"""A lenser's own provider keys, with their Supabase JWT: store one, list them, revoke one.

The secret travels in one direction only: in, with ``POST``. No answer and no log line carries it;
a key is shown by id, provider, label and its last 4 characters. A key id that is not the caller's
is answered as a missing one (403 ``execute.key_resolution_failed``). Revoking a revoked key
answers 200 again (a retried DELETE succeeds).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import Field, SecretStr

from execution_proxy.application.keys import KeyView
from execution_proxy.http.keys import BYOK_KEYS, RATE_LIMITER
from lf_web import RequestBody, enforce, event_metadata, ok, parse_body, path_uuid, require_user

routes = web.RouteTableDef()

# Ours (seed 000 sets none for these routes): per lenser per minute, all three routes together.
KEY_REQUESTS_PER_MINUTE = 30


class StoreKeyRequest(RequestBody):
    provider: str = Field(min_length=1, max_length=40)
    key: SecretStr  # masked in any repr of the body; the domain checks its length
    label: str | None = None  # the domain checks its length


def key_view(view: KeyView) -> dict[str, Any]:
    return {
        "id": view.key_id,
        "provider": view.provider,
        "label": view.label,
        "suffix": view.suffix,
        "status": view.status,
        "createdAt": view.created_at,
    }


async def _caller(request: web.Request) -> UUID:
    lenser_id = await require_user(request)
    await enforce(request, request.app[RATE_LIMITER], f"byok-keys:{lenser_id}", KEY_REQUESTS_PER_MINUTE)
    return lenser_id


@routes.post("/execute/keys")
async def store_key(request: web.Request) -> web.Response:
    lenser_id = await _caller(request)
    body = await parse_body(request, StoreKeyRequest)
    view = await request.app[BYOK_KEYS].store(
        lenser_id,
        body.provider,
        body.key.get_secret_value(),
        body.label or None,
        metadata=event_metadata(request, f"lenser:{lenser_id}"),
    )
    return ok(request, key_view(view), status=201)


@routes.get("/execute/keys")
async def list_keys(request: web.Request) -> web.Response:
    lenser_id = await _caller(request)
    return ok(request, {"keys": [key_view(view) for view in await request.app[BYOK_KEYS].list(lenser_id)]})


@routes.delete("/execute/keys/{key_id}")
async def revoke_key(request: web.Request) -> web.Response:
    lenser_id = await _caller(request)
    view = await request.app[BYOK_KEYS].revoke(
        lenser_id, path_uuid(request, "key_id"), metadata=event_metadata(request, f"lenser:{lenser_id}")
    )
    return ok(request, key_view(view))
