"""The app factory every service starts from, and the runner.

``create_app`` only wires: settings, the kit's middlewares (with the service's domain refusals),
``/health``, ``/metrics``, ``/openapi.yaml``, the database pool and the process's log wake-ups
(``app[WAKEUP]``: the service's use cases call its ``appended`` after they commit, its background
work's readers wait on it). A service adds its routes and
its own ``cleanup_ctx`` resources (``lf_service.use_broker``, background work) afterwards; tests
build the app with the same factory.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from lf_eventstore import Wakeup
from lf_pg import create_pool
from lf_web.auth import JWT_VERIFIER, JwtVerifier, internal_key_middleware
from lf_web.errors import Refusals, domain_errors_middleware, error_middleware
from lf_web.health import health_handler
from lf_web.keys import BROKER_CHECK, ERROR_SHAPE, PG_POOL, SETTINGS, STARTED_AT, WAKEUP, ErrorShape
from lf_web.metrics import metrics_handler, metrics_middleware
from lf_web.request_context import add_response_headers, request_context_middleware
from lf_web.settings import ServiceSettings

__all__ = ["BROKER_CHECK", "PG_POOL", "SETTINGS", "WAKEUP", "create_app", "exit_deadline_seconds", "run"]

log = structlog.get_logger(__name__)

EXIT_GRACE_SECONDS = 5.0
EXIT_OVERDUE_STATUS = 70  # EX_SOFTWARE: the shutdown did not finish; the work still running was dropped


def create_app(
    settings: ServiceSettings,
    *,
    service: str,
    schema: str,
    openapi_path: Path | None = None,
    refusals: Refusals | None = None,
    error_shape: ErrorShape | None = None,
) -> web.Application:
    """``refusals``: the service's domain refusal classes and the catalogue code of each.
    ``error_shape``: the body of every error answer, for a service whose seed fixes its own (the
    status stays the code's); without it, the envelope's."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # Outermost first: context and metrics see the final answer, errors become envelopes
        # before them, and the internal-key check raises into the error middleware.
        middlewares=[
            request_context_middleware,
            metrics_middleware(service),
            error_middleware,
            internal_key_middleware,
            # Innermost: a domain refusal becomes an ApiError that the error middleware answers.
            *([domain_errors_middleware(refusals)] if refusals else []),
        ],
    )
    app[SETTINGS] = settings
    if error_shape is not None:
        app[ERROR_SHAPE] = error_shape
    app[STARTED_AT] = time.monotonic()
    app[JWT_VERIFIER] = JwtVerifier(settings)
    # One per process, shared by every writer and reader of the schema (lf_eventstore.wakeup).
    app[WAKEUP] = Wakeup(settings.database_url, schema, role=settings.db_role)
    app.on_response_prepare.append(add_response_headers)
    app.router.add_get("/health", health_handler)
    app.router.add_get("/metrics", metrics_handler)
    if openapi_path is not None:
        app.router.add_get("/openapi.yaml", _static_file(openapi_path.read_bytes(), "application/yaml"))
    app.cleanup_ctx.append(_pg_pool(settings, schema))
    return app


def _static_file(body: bytes, content_type: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    return handler


def _pg_pool(settings: ServiceSettings, schema: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def pg_pool(app: web.Application) -> AsyncIterator[None]:
        app[PG_POOL] = await create_pool(settings.database_url, schema, role=settings.db_role)
        yield
        await app[WAKEUP].close()  # after the background work (a later cleanup_ctx) has stopped
        await _close_pool(app[PG_POOL])

    return pg_pool


POOL_CLOSE_SECONDS = 2.0


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully if the database answers, else terminate: a close waits for every connection
    to be released and for the server's goodbye, and a database that hangs never says it."""
    closing = asyncio.ensure_future(pool.close())
    done, _ = await asyncio.wait([closing], timeout=POOL_CLOSE_SECONDS)
    if not done:
        log.warning("pg_pool.close_overdue", seconds=POOL_CLOSE_SECONDS)
        closing.cancel()
        pool.terminate()
    elif (error := closing.exception()) is not None:
        log.warning("pg_pool.close_failed", exc_info=error)
        pool.terminate()


def exit_deadline_seconds(settings: ServiceSettings) -> float:
    """How long a stopping service may take: in-flight requests get ``shutdown_timeout_seconds``,
    then the background work (``BackgroundWork.stop``) as long again, then a grace for closing."""
    return 2 * settings.shutdown_timeout_seconds + EXIT_GRACE_SECONDS


def run(app: web.Application, settings: ServiceSettings) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, let in-flight requests finish (up to the
    shutdown timeout) and run the ``cleanup_ctx`` resources in reverse.

    The whole shutdown has a deadline: if anything (a library that swallows a cancellation, a peer
    that never answers a close) keeps it going past ``exit_deadline_seconds``, the process exits
    anyway, with status 70. Nothing is lost by that: unacked messages return to their queue and
    uncommitted transactions roll back.
    """
    app.on_shutdown.append(_arm_exit_deadline(exit_deadline_seconds(settings)))
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,  # request_context_middleware writes the access line, as JSON
        print=None,
    )


def _arm_exit_deadline(seconds: float) -> Callable[[web.Application], Awaitable[None]]:
    async def arm(_app: web.Application) -> None:
        # A thread, not the event loop: the loop may be the thing that is stuck.
        timer = threading.Timer(seconds, _exit_overdue, (seconds,))
        timer.daemon = True  # a shutdown that finishes in time exits without waiting for it
        timer.name = "shutdown deadline"
        timer.start()

    return arm


def _exit_overdue(seconds: float) -> None:
    log.error("shutdown.overdue", deadline_seconds=seconds, threads=[t.name for t in threading.enumerate()])
    os._exit(EXIT_OVERDUE_STATUS)
