"""Bookkeeping rows do not grow for ever: the inbox keeps a message id only as long as a copy of
that message can still arrive.

A message id must stay in the inbox for longer than any redelivery window, or a late copy would be
applied twice. Copies arrive within seconds (a relay batch republished after a crash, a nack), or
after an outage of the consumer (messages wait in the queue) or an operator's re-drive from the
DLQ. ``INBOX_RETENTION`` (30 days) is far beyond all of them: a re-drive must happen within it.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from lf_pg import WITHOUT_FLUSH

INBOX_RETENTION = timedelta(days=30)
PRUNE_INTERVAL_SECONDS = 3600.0
_BATCH = 10_000


async def prune_inbox(pool: asyncpg.Pool, retention: timedelta = INBOX_RETENTION) -> int:
    """Delete inbox rows older than ``retention``, in short batches (no long lock, no long
    transaction); returns how many. The batches do not wait for the WAL flush: rows a server crash
    brings back are only kept a little longer, and pruned next time."""
    deleted = 0
    while True:
        batch = await pool.fetchval(
            "WITH expired AS ("
            "  SELECT message_id FROM inbox WHERE received_at < now() - $1::interval"
            "  ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED"
            "), gone AS (DELETE FROM inbox USING expired WHERE inbox.message_id = expired.message_id"
            "  RETURNING 1)"
            f" SELECT count(*), {WITHOUT_FLUSH} FROM gone",
            retention,
            _BATCH,
        )
        deleted += batch
        if batch < _BATCH:
            return deleted
