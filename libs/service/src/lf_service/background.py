"""A service's background work (followers, relay, consumer, periodic jobs) as one ``cleanup_ctx``.

The service only says what runs (``wire``); this opens the ``BackgroundWork`` on the app's pool,
the service's schema and role and the process's ``Wakeup`` (``app[WAKEUP]``, which its commands call
after they commit), and stops it within the shutdown deadline every service keeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from lf_messaging import BackgroundWork
from lf_web import PG_POOL, WAKEUP, ServiceSettings

Wiring = Callable[[web.Application, BackgroundWork], None]


def use_background_work(
    settings: ServiceSettings, schema: str, wire: Wiring
) -> Callable[[web.Application], AsyncIterator[None]]:
    """``app.cleanup_ctx.append(use_background_work(settings, SCHEMA, _background))``, after the
    resources ``wire`` reads (the use cases, ``use_broker``)."""

    async def background(app: web.Application) -> AsyncIterator[None]:
        work = BackgroundWork(
            app[PG_POOL], dsn=settings.database_url, schema=schema, role=settings.db_role, wakeup=app[WAKEUP]
        )
        wire(app, work)
        yield
        await work.stop(deadline=settings.shutdown_timeout_seconds)

    return background
