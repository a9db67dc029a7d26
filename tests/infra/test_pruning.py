"""Bookkeeping tables are bounded: the service prunes its inbox itself (lf_messaging.pruning)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import lf_eventstore
import lf_messaging
import lf_projections
from lf_messaging.background import BackgroundWork
from lf_messaging.pruning import INBOX_RETENTION, prune_inbox
from lf_pg import create_pool, migrate

SCHEMA = "svc"


async def test_inbox_rows_older_than_the_retention_are_pruned_and_younger_kept(database_url: str) -> None:
    await migrate(
        database_url, SCHEMA, [lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS, lf_messaging.MIGRATIONS]
    )
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=2)
    try:
        await pool.execute(
            "INSERT INTO inbox (message_id, routing_key, received_at)"
            " SELECT 'old-' || i, 'x.y.v1', now() - $1::interval - interval '1 minute'"
            " FROM generate_series(1, 25) i",
            INBOX_RETENTION,
        )
        await pool.execute(
            "INSERT INTO inbox (message_id, routing_key, received_at)"
            " VALUES ('recent', 'x.y.v1', now() - $1::interval + interval '1 hour')",
            INBOX_RETENTION,
        )

        assert await prune_inbox(pool) == 25
        assert await pool.fetchval("SELECT array_agg(message_id) FROM inbox") == ["recent"]
        assert INBOX_RETENTION >= timedelta(days=7)  # far beyond any redelivery window

        # The service does it by itself: starting a consumer starts the pruning job.
        await pool.execute(
            "INSERT INTO inbox (message_id, routing_key, received_at)"
            " VALUES ('old-again', 'x.y.v1', now() - interval '400 days')"
        )
        work = BackgroundWork(pool, dsn=database_url, schema=SCHEMA, role=None)

        class IdleConsumer:
            appended = None  # BackgroundWork gives it the process's wake-up

            async def run(self) -> None:
                await asyncio.Event().wait()

            async def stop(self, timeout: float) -> None:
                return None

        work.consume(IdleConsumer())  # type: ignore[arg-type]
        try:
            for _ in range(100):
                if not await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = 'old-again'"):
                    break
                await asyncio.sleep(0.05)
            assert await pool.fetchval("SELECT array_agg(message_id) FROM inbox") == ["recent"]
        finally:
            await work.stop(deadline=2)
    finally:
        await pool.close()
