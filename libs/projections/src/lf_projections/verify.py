"""``python -m <pkg> verify``: every stream and every read model against a replay of the log.

Each service lists what it keeps in one ``Verifiable``: its aggregates (each by its stream prefix)
and its projections, inline or followed. ``verify`` checks the streams (``lf_eventstore.verify``),
then each projection, and ``report`` prints every difference and answers the exit code.

A projection is checked without disturbing the live service:

- Its live tables and the events are read in one REPEATABLE READ READ ONLY transaction: a consistent
  view that holds no transaction id (the readers' horizon is never held back) and takes no lock
  stronger than ACCESS SHARE (no command, follower or rebuild waits on it).
- The replay runs on a second connection into temporary tables shaped like the live ones (the
  handlers' unqualified table names find ``pg_temp`` first), in short transactions of one batch
  each. Temporary tables are private to that connection and vanish with it: a verify racing a
  rebuild, another verify or a crash leaves nothing behind and clobbers nobody's shadow tables.
- An inline projection is written with its events, so it is compared with a replay of every event
  that view sees, in append (position) order as a rebuild replays it. A followed projection lags
  the log by design: it is compared with a replay up to its own checkpoint as that view sees it.
- Rows are compared by primary key, both sides sorted the same way and merged as they stream, so
  memory does not grow with the tables.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import asyncpg

from lf_eventstore import START, AggregateRepository, Checkpoint, read_after, read_in_position_order
from lf_eventstore.verify import NOTHING, Difference, Findings, changed_fields, verify_streams
from lf_pg.pool import connect
from lf_projections.projection import Projection

BATCH = 1000
# A database going away is not something the log says; verify fails rather than report it.
_LOST = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)


@dataclass(frozen=True)
class Verifiable:
    """What one service keeps: its aggregates, each by its stream prefix, and its read models,
    each compared as what it declares itself: written with the events, or by its own runner
    (``Projection(followed=True)``, compared at that runner's checkpoint)."""

    aggregates: tuple[AggregateRepository[Any], ...]
    projections: tuple[Projection, ...] = ()


async def verify(
    dsn: str, schema: str, kept: Verifiable, *, role: str | None = None, limit: int = 100
) -> list[Findings]:
    """Every stream, then every projection; ``limit`` differences listed per check."""
    conn = await connect(dsn, schema, role=role)
    scratch = await connect(dsn, schema, role=role)
    try:
        findings = [await verify_streams(conn, kept.aggregates, limit=limit)]
        for projection in kept.projections:
            findings.append(await verify_projection(conn, scratch, schema, projection, limit=limit))
        return findings
    finally:
        await scratch.close()
        await conn.close()


def report(service: str, findings: Sequence[Findings], out: TextIO = sys.stdout) -> int:
    """Print every difference and what was checked; the exit code: 1 on any difference, else 0."""
    total = 0
    for found in findings:
        for difference in found.differences:
            print(difference, file=out)
        if found.unlisted:
            print(f"{found.subject}: {_differences(found.unlisted)} more, not listed", file=out)
        print(f"{found.subject}: {found.checked}, {_differences(found.count)}", file=out)
        total += found.count
    print(f"{service}: " + (_differences(total) if total else "no differences"), file=out)
    return 1 if total else 0


def _differences(n: int) -> str:
    return f"{n} difference" + ("" if n == 1 else "s")


async def verify_projection(
    conn: asyncpg.Connection,
    scratch: asyncpg.Connection,
    schema: str,
    projection: Projection,
    *,
    limit: int = 100,
) -> Findings:
    """Compare ``projection``'s live tables with a replay; ``scratch`` holds the replay's tables."""
    findings = Findings(projection.name, limit=limit)
    live = ", ".join(f'"{schema}".{table}' for table in projection.tables)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # The first statement takes the snapshot. The live tables are not touched (nor locked)
        # until the replay is done; their identities then tell whether a rebuild swapped one in
        # meanwhile, whose rows this snapshot cannot see.
        tables_before = await _identities(conn, schema, projection.tables)
        await _create_scratch_tables(scratch, schema, projection.tables)
        try:
            if projection.follower_name is not None:
                at = await _checkpoint(conn, projection.follower_name)
                replayed = await _replay_up_to(conn, scratch, projection, at)
                where = f"at its checkpoint ({at.transaction_id}, {at.position})"
            else:
                replayed = await _replay_visible(conn, scratch, projection)
                where = "at the head of the log"
            if isinstance(replayed, Difference):
                findings.add([replayed])
                findings.checked = f"replay failed {where}"
                return findings
            # Held from here to the end: no swap can come between the check and the reading.
            await conn.execute(f"LOCK TABLE {live} IN ACCESS SHARE MODE")
            if await _identities(conn, schema, projection.tables) != tables_before:
                findings.add([_REPLACED])
                findings.checked = f"{replayed} events replayed {where}, nothing compared"
                return findings
            rows = 0
            for table in projection.tables:
                rows += await _compare_table(conn, scratch, schema, table, findings)
            findings.checked = f"{replayed} events replayed {where}, {rows} rows compared"
        finally:
            await _drop_scratch_tables(scratch, projection.tables)
    return findings


_REPLACED = Difference(
    "tables", "identity", "the same tables throughout", "one replaced while verifying (a rebuild?): run again"
)


async def _identities(conn: asyncpg.Connection, schema: str, tables: Sequence[str]) -> list[int | None]:
    return [await conn.fetchval("SELECT to_regclass($1)::oid", f'"{schema}".{t}') for t in tables]


async def _create_scratch_tables(scratch: asyncpg.Connection, schema: str, tables: Sequence[str]) -> None:
    async with scratch.transaction():
        for table in tables:
            await scratch.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")
            await scratch.execute(f'CREATE TEMPORARY TABLE {table} (LIKE "{schema}".{table} INCLUDING ALL)')


async def _drop_scratch_tables(scratch: asyncpg.Connection, tables: Sequence[str]) -> None:
    if scratch.is_closed():
        return
    async with scratch.transaction():
        for table in tables:
            await scratch.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")


async def _checkpoint(conn: asyncpg.Connection, name: str) -> Checkpoint:
    row = await conn.fetchrow(
        "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1", name
    )
    return START if row is None else Checkpoint(row["transaction_id"], row["position"])


async def _apply(scratch: asyncpg.Connection, projection: Projection, events: list[Any]) -> Difference | None:
    """One batch into the scratch tables, in a transaction of its own (short: one batch)."""
    try:
        async with scratch.transaction():
            await projection.apply(scratch, events)
    except _LOST:
        raise
    except (asyncpg.PostgresError, KeyError, TypeError, ValueError) as error:
        # The log holds something the projection cannot replay: a finding, not a crash.
        found = f"{type(error).__name__}: {error}"
        key = f"events at positions {events[0].position}..{events[-1].position}"
        return Difference(projection.name, key, "a replay that applies", found)
    return None


async def _replay_visible(
    conn: asyncpg.Connection, scratch: asyncpg.Connection, projection: Projection
) -> int | Difference:
    """Every event this snapshot sees, in append order: what an inline projection reflects."""
    position, replayed = 0, 0
    while events := await read_in_position_order(conn, position, limit=BATCH, types=projection.types):
        if failed := await _apply(scratch, projection, events):
            return failed
        position, replayed = events[-1].position, replayed + len(events)
    return replayed


async def _replay_up_to(
    conn: asyncpg.Connection, scratch: asyncpg.Connection, projection: Projection, at: Checkpoint
) -> int | Difference:
    """The events a follower at ``at`` has handled, in its reading order."""
    after, replayed = START, 0
    while events := await read_after(conn, after, limit=BATCH, types=projection.types):
        handled = [e for e in events if Checkpoint(e.transaction_id, e.position) <= at]
        if handled and (failed := await _apply(scratch, projection, handled)):
            return failed
        replayed += len(handled)
        if len(handled) < len(events):
            break
        after = Checkpoint(events[-1].transaction_id, events[-1].position)
    return replayed


async def _key_columns(conn: asyncpg.Connection, schema: str, table: str) -> list[str]:
    """The primary key's columns; every column for a table without one."""
    columns = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = to_regclass($1) AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        f'"{schema}".{table}',
    ) or await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        f'"{schema}".{table}',
    )
    return [c["attname"] for c in columns]


async def _rows(
    conn: asyncpg.Connection, table: str, key: list[str]
) -> AsyncIterator[tuple[list[str | None], dict[str, Any]]]:
    """``table``'s rows as (key, row), in the order ``_sort_key`` gives: each key column as text in
    the "C" collation (byte order of UTF-8, which is code point order, as Python compares), nulls
    first (a table without a primary key is keyed by all its columns, nullable ones too)."""
    as_text = [f'"{c}"::text COLLATE "C"' for c in key]
    order = ", ".join(f"{column} NULLS FIRST" for column in as_text)
    query = f'SELECT ARRAY[{", ".join(as_text)}] AS "?key", * FROM {table} ORDER BY {order}'
    async for row in conn.cursor(query, prefetch=BATCH):
        values = dict(row.items())
        yield values.pop("?key"), values


def _sort_key(key: list[str | None]) -> list[tuple[bool, str]]:
    return [(value is not None, value or "") for value in key]


async def _compare_table(
    conn: asyncpg.Connection, scratch: asyncpg.Connection, schema: str, table: str, findings: Findings
) -> int:
    """Merge the live rows (``conn``'s snapshot) with the replayed ones (``scratch``); returns how
    many live rows were compared."""
    key = await _key_columns(conn, schema, table)
    live = aiter(_rows(conn, f'"{schema}".{table}', key))
    async with scratch.transaction(readonly=True):
        replayed = aiter(_rows(scratch, f"pg_temp.{table}", key))
        found, expected = await anext(live, None), await anext(replayed, None)
        compared = 0
        while found is not None or expected is not None:
            if found is None or (expected is not None and _sort_key(expected[0]) < _sort_key(found[0])):
                findings.add([Difference(table, _key(key, expected[0]), expected[1], NOTHING)])
                expected = await anext(replayed, None)
                continue
            compared += 1
            if expected is None or _sort_key(found[0]) < _sort_key(expected[0]):
                findings.add([Difference(table, _key(key, found[0]), NOTHING, found[1])])
            else:
                if found[1] != expected[1]:
                    changed = changed_fields(expected[1], found[1])
                    findings.add([Difference(table, _key(key, found[0]), *changed)])
                expected = await anext(replayed, None)
            found = await anext(live, None)
    return compared


def _key(columns: list[str], values: list[str | None]) -> str:
    return ", ".join(f"{c}={'null' if v is None else v}" for c, v in zip(columns, values, strict=True))
