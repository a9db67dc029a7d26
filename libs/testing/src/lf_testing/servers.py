"""An aiohttp test server that treats handlers as production does.

aiohttp's ``TestServer`` cancels a handler as soon as its client disconnects
(``handler_cancellation=True``); ``web.run_app``, which services run under, does not, and waits up
to ``shutdown_timeout`` for handlers before cancelling them. Code that must notice a client leaving
(a stream) or survive a shutdown is tested under ``ServedAsInProduction``:

    async with TestClient(ServedAsInProduction(app, shutdown_timeout=2)) as client: ...
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner


class ServedAsInProduction(TestServer):
    def __init__(self, app: web.Application, *, shutdown_timeout: float = 60.0, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.shutdown_timeout = shutdown_timeout

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs.update(handler_cancellation=False, shutdown_timeout=self.shutdown_timeout)
        return await super()._make_runner(**kwargs)
