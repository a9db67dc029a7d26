"""The error middlewares: whatever goes wrong below a route becomes an enveloped error answer.

``ApiError`` carries its catalogue code. A service's domain refusals (``WalletError``,
``BillingError``) become codes through ``domain_errors_middleware``, given the service's mapping
from each refusal class to its code: the domain itself knows nothing of HTTP. aiohttp's own
refusals (no route, wrong method, body over ``client_max_size``) are translated so clients only
ever see catalogue codes. Anything else is a bug: it is logged with its traceback and answered as
a bare ``internal_error``, never with the trace.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from lf_contracts.errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    VALIDATION_ERROR,
    ApiError,
    ErrorCode,
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


Refusals = Mapping[type[Exception], ErrorCode]
"""A service's domain refusal classes and the catalogue code each is answered with."""


def domain_errors_middleware(codes: Refusals) -> Middleware:
    """Answer a refusal raised below a route with the code of its class (or of the nearest base
    class that has one) in ``codes``, its message and its ``details`` if it has them. Any other
    exception passes on: to the error middleware around this one, which answers a bug as
    ``internal_error``."""
    refusals = tuple(codes)

    @web.middleware
    async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except refusals as refused:
            code = next(codes[cls] for cls in type(refused).__mro__ if cls in codes)
            # A refusal may say which parts of the request were wrong (its ``details``).
            raise ApiError(code, str(refused) or None, details=getattr(refused, "details", None)) from None

    return domain_errors
