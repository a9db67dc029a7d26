"""Rebuilding a projection from the log, and swapping the result in.

The projection's handlers use unqualified table names, so replaying them on a connection whose
search_path puts the shadow schema ``<schema>_rebuild`` first fills fresh copies of its tables. Then
the fresh tables replace the live ones in one transaction. How the replay may run depends on who
writes the projection:

- A followed projection (``follower_name``) is written by its runner only. The replay runs batch by
  batch in reading order, below the horizon, while the live tables keep serving; the swap locks the
  tables and the runner's checkpoint, replays what is below the horizon by then, and hands the
  runner that checkpoint: it goes on from there. Its handlers must not depend on the order of one
  stream's events across transactions (the ledger's rows are per event).
- An inline projection is written by the commands themselves and follows each stream's history,
  which only append (position) order reproduces: reading order follows transaction ids, which
  concurrent transactions may take in another order than their stream locks. So its live tables are
  locked for the whole replay (commands that write them wait), and every event is replayed in
  position order: under that lock, the visible part of each stream is final.
"""

from __future__ import annotations

import asyncpg

from lf_eventstore import START, Checkpoint, read_after, read_in_position_order
from lf_projections.follower import lock_checkpoint, save_checkpoint
from lf_projections.projection import Projection


def shadow_schema(schema: str) -> str:
    return f"{schema}_rebuild"


async def _replay_batch(
    conn: asyncpg.Connection, projection: Projection, after: Checkpoint
) -> Checkpoint | None:
    """Apply the next batch; the new checkpoint, or ``None`` when there was nothing left."""
    events = await read_after(conn, after, limit=5000, types=projection.types)
    if not events:
        return None
    await projection.apply(conn, events)
    return Checkpoint(events[-1].transaction_id, events[-1].position)


async def rebuild(
    conn: asyncpg.Connection, schema: str, projection: Projection, *, follower_name: str | None = None
) -> int:
    """Replay the whole log into fresh tables and swap them in; returns the live row count.

    ``follower_name``: the checkpoint of the runner that follows this projection, if it has one.
    """
    shadow = shadow_schema(schema)
    live_tables = ", ".join(f'"{schema}".{t}' for t in projection.tables)
    await conn.execute(f'SET search_path TO "{shadow}", "{schema}"')
    try:
        for table in projection.tables:
            await conn.execute(f'DROP TABLE IF EXISTS "{shadow}".{table}')
            await conn.execute(f'CREATE TABLE "{shadow}".{table} (LIKE "{schema}".{table} INCLUDING ALL)')
        if follower_name:
            after = START
            while True:  # the bulk of the work, committed as it goes, live tables untouched
                async with conn.transaction():
                    moved = await _replay_batch(conn, projection, after)
                if moved is None:
                    break
                after = moved
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {live_tables} IN ACCESS EXCLUSIVE MODE")
            if follower_name:
                await lock_checkpoint(conn, follower_name)
                while (moved := await _replay_batch(conn, projection, after)) is not None:
                    after = moved
            else:
                position = 0
                while events := await read_in_position_order(
                    conn, position, limit=5000, types=projection.types
                ):
                    await projection.apply(conn, events)
                    position = events[-1].position
            for table in projection.tables:
                await conn.execute(f'DROP TABLE "{schema}".{table}')
                await conn.execute(f'ALTER TABLE "{shadow}".{table} SET SCHEMA "{schema}"')
            if follower_name:
                await save_checkpoint(conn, follower_name, after)
        return sum([await conn.fetchval(f'SELECT count(*) FROM "{schema}".{t}') for t in projection.tables])
    finally:
        await conn.execute(f'SET search_path TO "{schema}"')
