"""The broker connection of a service's app, as one ``cleanup_ctx`` resource.

It connects in the background: the HTTP API serves (and ``/health`` says ``broker: false``) while
RabbitMQ is away. Background work that publishes or consumes reads the connection under ``BROKER``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from lf_messaging import Broker
from lf_web import BROKER_CHECK

BROKER = web.AppKey("broker", Broker)


def use_broker(amqp_url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """``app.cleanup_ctx.append(use_broker(settings.amqp_url))``, before the work that uses it."""

    async def broker(app: web.Application) -> AsyncIterator[None]:
        async with Broker(amqp_url) as connection:
            app[BROKER], app[BROKER_CHECK] = connection, connection.is_up
            yield

    return broker
