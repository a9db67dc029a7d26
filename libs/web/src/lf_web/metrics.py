"""HTTP metrics for Prometheus: request count and latency per route, method and status.

Metrics are registered once, at import, in the default registry: an app factory that registered them
would fail the second time it ran (tests build many apps in one process). ``service`` is a label,
not part of the name, so dashboards work across services. ``route`` is the matched route's template
(``/v1/runs/{runId}``) or ``unmatched``, never the raw path, so scanners cannot explode cardinality.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "route", "method", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["service", "route", "method"]
)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(service: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _observe(service, request, exc.status, started)
            raise
        _observe(service, request, response.status, started)
        return response

    return middleware


def _observe(service: str, request: web.Request, status: int, started: float) -> None:
    route = route_label(request)
    HTTP_REQUESTS.labels(service, route, request.method, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(service, route, request.method).observe(time.perf_counter() - started)


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
