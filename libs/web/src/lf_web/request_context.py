"""Per-request context: the request id, the start time, and the headers every answer carries.

The request id comes from the caller's ``X-Request-Id`` when it is safe to log and echo (so a trace
can be followed across services), else a fresh one in the gateway's format: 32 hex digits (16 random
bytes), what nginx's ``$request_id`` is. The gateway applies the same rule
(infra/gateway/nginx.conf.template) and forwards the id it settled on, so a request has one id, in
one format, in the gateway's log, the services' logs and the answer. It is bound into structlog's
contextvars, so every log line written while the request runs names it without anyone passing it
around.
"""

from __future__ import annotations

import re
import secrets
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

REQUEST_ID = web.RequestKey("request_id", str)
STARTED_NS = web.RequestKey("started_ns", int)
RESPONSE_HEADERS = web.RequestKey("response_headers", dict[str, str])
"""Headers added to whatever answer this request gets, errors and streams included."""

# The gateway's map of $http_x_request_id holds the same pattern.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = structlog.get_logger("lf_web.request")


def request_id_from(request: web.Request) -> str:
    """The caller's id if it cannot smuggle anything into logs or headers, else a new one."""
    candidate = request.headers.get("X-Request-Id", "")
    return candidate if _SAFE_REQUEST_ID.fullmatch(candidate) else new_request_id()


def new_request_id() -> str:
    """32 hex digits, like nginx's ``$request_id``."""
    return secrets.token_hex(16)


def duration_ms(request: web.Request) -> int:
    return (time.perf_counter_ns() - request[STARTED_NS]) // 1_000_000


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_from(request)
    request[REQUEST_ID] = request_id
    request[STARTED_NS] = time.perf_counter_ns()
    request[RESPONSE_HEADERS] = {"X-Request-Id": request_id}
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and the like, raised on purpose
            _log_access(request, exc.status)
            raise
        _log_access(request, response.status)
        return response


def _log_access(request: web.Request, status: int) -> None:
    # The path only: query strings may carry secrets.
    log.info(
        "http.request",
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=duration_ms(request),
    )


async def add_response_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: runs just before headers are sent, so streams get them too."""
    response.headers.update(request.get(RESPONSE_HEADERS, {}))
