"""Rebuilding a projection from the log, and swapping the result in.

The projection's handlers (or fold) use unqualified table names, so replaying them on a connection whose
search_path puts the shadow schema ``<schema>_rebuild`` first fills fresh copies of its tables. A
rebuild changes the schema, so it runs as the schema's owner. It never holds a transaction id or an
exclusive lock for longer than one batch, and the live tables keep serving throughout:

1. **Replay**, batch by batch, each batch its own short transaction, into the shadow tables.
   - A followed projection is replayed as its runner reads: in reading order, below the horizon.
   - An inline projection follows each stream's own history, which reading order does not always
     give (a transaction takes its id at its first write, possibly before it queues on a stream's
     lock). It is replayed in position order, which is each stream's order, by a
     ``PositionOrderReader``: it also picks up the events of transactions that were still running
     when it passed their positions, once they have ended. It never waits for the horizon, so a
     long transaction elsewhere on the server does not hold it back.
2. **Swap**, one short transaction, taking locks in the one order used everywhere: the follower's
   checkpoint row first (a followed projection; its runner takes it first too), then the live
   tables, ``ACCESS EXCLUSIVE`` under a lock timeout (on timeout it catches up again and retries,
   rather than queueing live reads behind a long wait). It replays what is left, gives the fresh
   tables the live ones' grants, drops the live tables and moves the fresh ones in.

   What is left: for a followed projection, what is below the horizon by then; the runner's
   checkpoint is set to that point and it goes on from there. For an inline projection, every
   event committed by then: under the lock every command that wrote the live tables has committed,
   and one that appended but has not yet written them waits on the lock and writes its effect into
   the fresh tables after the swap.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
import structlog

from lf_eventstore import START, Checkpoint, PositionOrderReader, checkpoint_of, read_after
from lf_pg import shadow_schema
from lf_projections.follower import lock_checkpoint, save_checkpoint
from lf_projections.projection import Projection

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000


class _FollowedReplay:
    """Reading order below the horizon, as the projection's runner reads."""

    isolation = "read_committed"

    def __init__(self, conn: asyncpg.Connection, projection: Projection) -> None:
        self.conn, self.projection = conn, projection
        self.after: Checkpoint = START

    async def batch(self) -> bool:
        """Apply the next batch (in the caller's transaction); whether more may be ahead."""
        events = await read_after(self.conn, self.after, limit=BATCH_SIZE, types=self.projection.types)
        if events:
            await self.projection.apply(self.conn, events)
            self.after = checkpoint_of(events[-1])
        return len(events) == BATCH_SIZE


class _InlineReplay:
    """Position order, each stream's own, catching transactions that commit behind it."""

    isolation = "repeatable_read"  # what PositionOrderReader needs

    def __init__(self, conn: asyncpg.Connection, projection: Projection) -> None:
        self.conn, self.projection = conn, projection
        self.reader = PositionOrderReader(projection.types)

    async def batch(self) -> bool:
        events, more = await self.reader.read(self.conn, limit=BATCH_SIZE)
        await self.projection.apply(self.conn, events)
        return more


async def _copy_grants(conn: asyncpg.Connection, live: str, fresh: str) -> None:
    """``CREATE TABLE ... LIKE`` copies no privileges: the runtime role keeps what it had."""
    rows = await conn.fetch(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END"
        " AS grantee, a.privilege_type"
        " FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> c.relowner",
        live,
    )
    granted: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        granted[row["grantee"]].append(row["privilege_type"])
    for grantee, privileges in granted.items():
        await conn.execute(f"GRANT {', '.join(privileges)} ON {fresh} TO {grantee}")


async def rebuild(
    conn: asyncpg.Connection,
    schema: str,
    projection: Projection,
    *,
    follower_name: str | None = None,
    lock_timeout_seconds: float = 0.5,
    attempts: int = 100,
) -> int:
    """Replay the whole log into fresh tables and swap them in; returns the live row count.

    ``conn`` must act as the schema's owner. ``follower_name``: the checkpoint of the runner that
    follows this projection, if it has one (otherwise the projection is inline).
    """
    shadow = shadow_schema(schema)
    live_tables = [f'"{schema}".{t}' for t in projection.tables]
    await conn.execute(f'SET search_path TO "{shadow}", "{schema}"')
    try:
        for table in projection.tables:
            await conn.execute(f'DROP TABLE IF EXISTS "{shadow}".{table}')
            await conn.execute(f'CREATE TABLE "{shadow}".{table} (LIKE "{schema}".{table} INCLUDING ALL)')
        replay = _FollowedReplay(conn, projection) if follower_name else _InlineReplay(conn, projection)
        for attempt in range(attempts):
            more = True
            while more:  # the bulk of the work, a batch per transaction, live tables untouched
                async with conn.transaction(isolation=replay.isolation):
                    more = await replay.batch()
            try:
                async with conn.transaction(isolation=replay.isolation):
                    await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_seconds * 1000)}")
                    if follower_name:
                        await lock_checkpoint(conn, follower_name)
                    await conn.execute(f"LOCK TABLE {', '.join(live_tables)} IN ACCESS EXCLUSIVE MODE")
                    # Locked: from here on nothing may fail half-way for a timeout (the replay's
                    # progress is also kept in memory). A repeatable read's snapshot starts here.
                    await conn.execute("SET LOCAL lock_timeout = 0")
                    while await replay.batch():
                        pass
                    for table, live in zip(projection.tables, live_tables, strict=True):
                        await _copy_grants(conn, live, f'"{shadow}".{table}')
                        await conn.execute(f"DROP TABLE {live}")
                        await conn.execute(f'ALTER TABLE "{shadow}".{table} SET SCHEMA "{schema}"')
                    if follower_name:
                        assert isinstance(replay, _FollowedReplay)
                        await save_checkpoint(conn, follower_name, replay.after)
                break
            except asyncpg.LockNotAvailableError:
                log.info("rebuild.swap_retried", projection=projection.name, attempt=attempt + 1)
                await asyncio.sleep(min(0.05 * (attempt + 1), 1.0))
        else:
            raise TimeoutError(f"{projection.name}: could not lock its tables for the swap")
        return sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in live_tables])
    finally:
        await conn.execute(f'SET search_path TO "{schema}"')
