"""The error middleware: whatever goes wrong below a route becomes an enveloped error answer.

``ApiError`` carries its catalogue code. aiohttp's own refusals (no route, wrong method, body over
``client_max_size``) are translated so clients only ever see catalogue codes. Anything else is a bug:
it is logged with its traceback and answered as a bare ``internal_error``, never with the trace.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from lf_contracts.errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    VALIDATION_ERROR,
    ApiError,
)
from lf_web.envelope import error_response

log = structlog.get_logger("lf_web.errors")


def _translate(request: web.Request, exc: web.HTTPException) -> ApiError | None:
    if isinstance(exc, web.HTTPNotFound):
        return ApiError(NOT_FOUND)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return ApiError(METHOD_NOT_ALLOWED, headers={"Allow": ", ".join(sorted(exc.allowed_methods))})
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = f"must be at most {request.client_max_size} bytes"
        return ApiError(
            VALIDATION_ERROR,
            "Request body is too large",
            details={"fields": [{"field": "body", "message": limit}]},
        )
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(request, exc)
    except web.HTTPException as exc:
        translated = _translate(request, exc)
        if translated is None:
            raise  # a redirect or another answer a handler chose on purpose
        return error_response(request, translated)
    except Exception:
        log.exception("http.unhandled_error", method=request.method, path=request.path)
        return error_response(request, ApiError(INTERNAL_ERROR))
