"""Rebuilding a projection from the log, and swapping the result in.

The projection's handlers use unqualified table names, so replaying them on a connection whose
search_path puts the shadow schema ``<schema>_rebuild`` first fills fresh copies of its tables. A
rebuild changes the schema, so it runs as the schema's owner. It never holds a transaction id or an
exclusive lock for longer than one batch, and the live tables keep serving throughout:

1. **Replay**, batch by batch, each batch its own short transaction: the events below the horizon,
   in reading order, into the shadow tables. A followed projection takes them in that order, as its
   runner does. An inline projection follows each stream's own history, which reading order does
   not always give (a transaction takes its id at its first write, possibly before it queues on a
   stream's lock, so two transactions on one stream may be read in the other order than they
   appended): an event whose predecessor in its stream comes later in reading order is held back
   until that predecessor has been applied (``StreamOrder``).
2. **Swap**, one short transaction, taking locks in the one order used everywhere: the follower's
   checkpoint row first (a followed projection; its runner takes it first too), then the live
   tables, ``ACCESS EXCLUSIVE`` under a lock timeout (on timeout it catches up again and retries,
   rather than queueing live reads behind a long wait). It replays what is left, gives the fresh
   tables the live ones' grants, drops the live tables and moves the fresh ones in.

   What is left: for a followed projection, what is below the horizon by then; the runner's
   checkpoint is set to that point and it goes on from there. For an inline projection, every
   committed event, horizon or not: under the lock every command that wrote the live tables has
   committed, and one that appended but has not yet written them waits on the lock and writes its
   effect into the fresh tables after the swap. So what is visible is final.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
import structlog

from lf_eventstore import (
    START,
    Checkpoint,
    RecordedEvent,
    checkpoint_of,
    predecessors,
    read_after,
    read_visible_after,
)
from lf_pg import shadow_schema
from lf_projections.follower import lock_checkpoint, save_checkpoint
from lf_projections.projection import Projection

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000


class StreamOrder:
    """Hands events on so that each stream's come in version order, whatever order they were read in."""

    def __init__(self) -> None:
        self._waiting: dict[int, RecordedEvent] = {}  # by the position of the event it waits for
        self._held: set[int] = set()

    @property
    def holding(self) -> int:
        return len(self._waiting)

    def release(self, events: list[RecordedEvent], before: dict[int, Checkpoint]) -> list[RecordedEvent]:
        """``events`` in reading order; ``before``: each one's predecessor in its stream."""
        ready: list[RecordedEvent] = []
        for event in events:
            previous = before.get(event.position)
            if previous is not None and (previous > checkpoint_of(event) or previous.position in self._held):
                self._waiting[previous.position] = event  # its predecessor is not applied yet
                self._held.add(event.position)
                continue
            ready.append(event)
            while (follower := self._waiting.pop(ready[-1].position, None)) is not None:
                self._held.discard(follower.position)
                ready.append(follower)
        return ready


class _Replay:
    """The shadow tables' progress: the reading-order point reached, and the events held back."""

    def __init__(self, conn: asyncpg.Connection, projection: Projection, *, in_stream_order: bool) -> None:
        self.conn, self.projection = conn, projection
        self.order = StreamOrder() if in_stream_order else None
        self.after = START

    async def batch(self, *, visible: bool = False) -> int:
        """Apply the next batch (in the caller's transaction); returns how many events were read."""
        read = read_visible_after if visible else read_after
        types = self.projection.types
        events = await read(self.conn, self.after, limit=BATCH_SIZE, types=types)
        if not events:
            return 0
        ready = events
        if self.order is not None:
            ready = self.order.release(events, await predecessors(self.conn, events, types=types))
        await self.projection.apply(self.conn, ready)
        self.after = checkpoint_of(events[-1])
        return len(events)


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
        replay = _Replay(conn, projection, in_stream_order=follower_name is None)
        for attempt in range(attempts):
            while True:  # the bulk of the work, a batch per transaction, live tables untouched
                async with conn.transaction():
                    read = await replay.batch()
                if read < BATCH_SIZE:
                    break
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_seconds * 1000)}")
                    if follower_name:
                        await lock_checkpoint(conn, follower_name)
                    await conn.execute(f"LOCK TABLE {', '.join(live_tables)} IN ACCESS EXCLUSIVE MODE")
                    # Locked: from here on nothing may fail half-way for a timeout (the replay's
                    # progress is also kept in memory).
                    await conn.execute("SET LOCAL lock_timeout = 0")
                    while await replay.batch(visible=follower_name is None):
                        pass
                    if replay.order is not None and replay.order.holding:
                        raise AssertionError(f"{projection.name}: events held back at the swap")
                    for table, live in zip(projection.tables, live_tables, strict=True):
                        await _copy_grants(conn, live, f'"{shadow}".{table}')
                        await conn.execute(f"DROP TABLE {live}")
                        await conn.execute(f'ALTER TABLE "{shadow}".{table} SET SCHEMA "{schema}"')
                    if follower_name:
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
