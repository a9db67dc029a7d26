"""Typed application keys shared by the kit's modules (aiohttp warns on plain string keys).

They live apart from ``app.py`` so that handlers (health, auth) can read them without importing the
app factory that imports those handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from lf_contracts.errors import ApiError
from lf_eventstore import Wakeup
from lf_web.settings import ServiceSettings

BrokerCheck = Callable[[], bool | Awaitable[bool]]
"""True when the broker connection is usable, e.g. ``lambda: not connection.is_closed``."""

SETTINGS = web.AppKey("settings", ServiceSettings)
PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
BROKER_CHECK = web.AppKey("broker_check", BrokerCheck)
STARTED_AT = web.AppKey("started_at_monotonic", float)
WAKEUP = web.AppKey("wakeup", Wakeup)
"""The process's log wake-ups: its readers wait on it, its use cases call ``appended`` after commit."""
ErrorShape = Callable[[ApiError], dict[str, object]]
"""A service whose seed fixes another error body than the envelope's (lightning-jobs' ``{error}``)."""
ERROR_SHAPE = web.AppKey("error_shape", ErrorShape)
