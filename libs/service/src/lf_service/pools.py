"""A small pool for work outside the served app: ``before_serving`` and a service's own commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from lf_pg import create_pool
from lf_web import ServiceSettings


@asynccontextmanager
async def service_pool(settings: ServiceSettings, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """On the service's schema, as its runtime role (``DB_ROLE``), as the app's own pool is."""
    pool = await create_pool(settings.database_url, schema, role=settings.db_role, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()
