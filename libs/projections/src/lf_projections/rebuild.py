"""Rebuilding a projection from the log, and swapping the result in.

The projection's handlers use unqualified table names, so replaying them on a connection whose
search_path puts the shadow schema ``<schema>_rebuild`` first fills fresh copies of its tables while
the live ones keep serving. The swap then happens in one short transaction that locks the live tables
(so no command or follower writes them meanwhile), replays what arrived since, and moves the fresh
tables into place.
"""

from __future__ import annotations

import asyncpg

from lf_eventstore import START, Checkpoint, read_after
from lf_projections.follower import lock_checkpoint, save_checkpoint
from lf_projections.projection import Projection


def shadow_schema(schema: str) -> str:
    return f"{schema}_rebuild"


async def _replay_batch(
    conn: asyncpg.Connection, projection: Projection, after: Checkpoint, *, below_horizon: bool = True
) -> Checkpoint | None:
    """Apply the next batch; the new checkpoint, or ``None`` when there was nothing left."""
    events = await read_after(conn, after, limit=5000, types=projection.types, below_horizon=below_horizon)
    if not events:
        return None
    await projection.apply(conn, events)
    return Checkpoint(events[-1].transaction_id, events[-1].position)


async def rebuild(
    conn: asyncpg.Connection, schema: str, projection: Projection, *, follower_name: str | None = None
) -> int:
    """Replay the whole log into fresh tables and swap them in; returns the live row count.

    ``follower_name`` is the checkpoint of the async runner of this projection, if it has one: the
    swap moves it to where the rebuild stopped, so the runner goes on from there.
    """
    shadow = shadow_schema(schema)
    await conn.execute(f'SET search_path TO "{shadow}", "{schema}"')
    try:
        for table in projection.tables:
            await conn.execute(f'DROP TABLE IF EXISTS "{shadow}".{table}')
            await conn.execute(f'CREATE TABLE "{shadow}".{table} (LIKE "{schema}".{table} INCLUDING ALL)')
        after = START
        # The bulk of the work: batch by batch, committed as it goes, live tables untouched.
        while True:
            async with conn.transaction():
                moved = await _replay_batch(conn, projection, after)
            if moved is None:
                break
            after = moved
        async with conn.transaction():
            tables = ", ".join(f'"{schema}".{t}' for t in projection.tables)
            await conn.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
            if follower_name:
                await lock_checkpoint(conn, follower_name)
            # Every writer of these tables has committed or now waits on the lock, so all it
            # wrote is visible: replay to the end, not only below the horizon.
            while (moved := await _replay_batch(conn, projection, after, below_horizon=False)) is not None:
                after = moved
            for table in projection.tables:
                await conn.execute(f'DROP TABLE "{schema}".{table}')
                await conn.execute(f'ALTER TABLE "{shadow}".{table} SET SCHEMA "{schema}"')
            if follower_name:
                await save_checkpoint(conn, follower_name, after)
        return sum([await conn.fetchval(f'SELECT count(*) FROM "{schema}".{t}') for t in projection.tables])
    finally:
        await conn.execute(f'SET search_path TO "{schema}"')
