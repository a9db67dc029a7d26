"""The answer envelope of seed 000: ``{data | error, meta: {requestId, durationMs, ...}}``.

One JSON encoder for every answer, so types are written the same way everywhere: UUIDs as strings,
datetimes as ISO 8601 UTC ending in ``Z``, Decimals as strings (money never becomes a float).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel

from lf_contracts.errors import ApiError
from lf_web.keys import ERROR_SHAPE
from lf_web.request_context import REQUEST_ID, duration_ms


def _encode(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # naive means UTC here
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


dumps = partial(json.dumps, default=_encode, separators=(",", ":"), ensure_ascii=False)


def _meta(request: web.Request, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"requestId": request[REQUEST_ID], "durationMs": duration_ms(request), **(extra or {})}


def ok(
    request: web.Request,
    data: Any,
    *,
    status: int = 200,
    meta: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"data": data, "meta": _meta(request, meta)}
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def error_response(request: web.Request, error: ApiError) -> web.Response:
    """The envelope's error, or the body of the service's own ``error_shape`` (``create_app``) with
    the code's status and headers all the same."""
    if (shape := request.config_dict.get(ERROR_SHAPE)) is not None:
        return web.json_response(shape(error), status=error.error.status, headers=error.headers, dumps=dumps)
    payload: dict[str, Any] = {"code": error.error.code, "message": error.message}
    if error.details is not None:
        payload["details"] = error.details
    body = {"error": payload, "meta": _meta(request, None)}
    return web.json_response(body, status=error.error.status, headers=error.headers, dumps=dumps)


def page_meta(limit: int, offset: int, total: int) -> dict[str, Any]:
    return {"limit": limit, "offset": offset, "total": total, "hasNextPage": offset + limit < total}
