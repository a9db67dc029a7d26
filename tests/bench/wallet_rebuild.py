"""Rebuilding the read models, beside plain reads and an INSERT ... SELECT of the same events."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields

import asyncpg
from common import logger
from cpu import CLIENT_AND_PG, CpuMeter, CpuSplit
from wallet_app import (
    DB,
    SCHEMA,
)

from lf_eventstore import RecordedEvent, read_after
from lf_eventstore.reader import START, Checkpoint
from lf_eventstore.store import EVENT_COLUMNS, to_recorded
from lf_pg.pool import connect
from lf_projections import Projection, rebuild

log = logger("bench")


class BudgetExhausted(Exception):
    pass


@dataclass(frozen=True)
class Metered(Projection):
    """The same projection, counting the events each committed batch applied; with a deadline, the
    rebuild stops (its current batch rolled back, the live tables untouched) once it has passed."""

    meter: dict[str, float] = field(default_factory=dict)

    async def apply(self, conn: asyncpg.Connection, events: Iterable[RecordedEvent]) -> None:
        events = list(events)
        deadline = self.meter.get("deadline")
        if deadline and time.perf_counter() > deadline:
            raise BudgetExhausted()
        await super().apply(conn, events)
        self.meter["events"] = self.meter.get("events", 0) + len(events)


@dataclass
class RebuildResult:
    name: str
    events: int
    seconds: float
    complete: bool
    rows: int | None
    cpu: CpuSplit

    @property
    def per_s(self) -> float:
        return self.events / self.seconds


async def rebuild_one(url: str, projection: Projection, budget: float, follower: str | None) -> RebuildResult:
    # Every field of the projection (handlers, a batch handler or a fold, whichever it has), plus the meter.
    metered = Metered(**{f.name: getattr(projection, f.name) for f in fields(projection)}, meter={})
    conn = await connect(url, SCHEMA)
    try:
        async with CpuMeter(DB["name"], groups=CLIENT_AND_PG) as meter:
            metered.meter["deadline"] = time.perf_counter() + budget
            rows, complete = None, True
            try:
                rows = await rebuild(conn, SCHEMA, metered, follower_name=follower)
            except BudgetExhausted:
                complete = False
    finally:
        await conn.close()
    result = RebuildResult(
        projection.name, int(metered.meter.get("events", 0)), meter.wall, complete, rows, meter.split
    )
    log(
        f"rebuild {projection.name}: {result.events} events in {result.seconds:.1f}s = {result.per_s:.0f}/s,"
        f" complete={complete}, {result.cpu.text()}"
    )
    return result


async def _read_log(
    url: str,
    read: Callable[[asyncpg.Connection, Checkpoint], Awaitable[list[RecordedEvent]]],
    limit_events: int,
    budget: float,
) -> tuple[int, float]:
    """Events read (and decoded) batch after batch, each in a transaction, and the seconds it took."""
    conn = await connect(url, SCHEMA)
    try:
        t = time.perf_counter()
        after, n = START, 0
        while n < limit_events and time.perf_counter() - t < budget:
            async with conn.transaction():
                batch = await read(conn, after)
            if not batch:
                break
            n += len(batch)
            after = Checkpoint(batch[-1].transaction_id, batch[-1].position)
        return n, time.perf_counter() - t
    finally:
        await conn.close()


async def read_baseline(url: str, types: list[str], limit_events: int, budget: float) -> tuple[int, float]:
    """Reading (and decoding) the log the way a rebuild does, without applying anything."""

    async def read(conn: asyncpg.Connection, after: Checkpoint) -> list[RecordedEvent]:
        return await read_after(conn, after, limit=5000, types=types)

    return await _read_log(url, read, limit_events, budget)


INDEX_ORDER_READ = (
    f"SELECT {EVENT_COLUMNS} FROM events"
    " WHERE (transaction_id, position) > ($1::text::xid8, $2)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AND type = ANY($4)"
    " ORDER BY events.transaction_id, events.position LIMIT $3"
)


async def read_index_order_baseline(url: str, types: list[str], budget: float) -> tuple[int, float]:
    """``read_after``'s query with its ORDER BY naming the table's columns (``events.transaction_id``),
    which the (transaction_id, position) index serves, instead of the xid8-cast-to-bigint output column
    of the same name, which it cannot: what reading the log costs when it does not sort it."""

    async def read(conn: asyncpg.Connection, after: Checkpoint) -> list[RecordedEvent]:
        rows = await conn.fetch(INDEX_ORDER_READ, str(after.transaction_id), after.position, 5000, types)
        return [to_recorded(row) for row in rows]

    return await _read_log(url, read, 10**18, budget)


async def insert_select_baseline(pool: asyncpg.Pool, types: list[str]) -> tuple[int, float]:
    """The ledger's writes done inside the server: two postings per event, one INSERT ... SELECT."""
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE IF EXISTS bench_postings")
        await conn.execute("CREATE TABLE bench_postings (LIKE ledger_postings INCLUDING ALL)")
        t = time.perf_counter()
        status = await conn.execute(
            "INSERT INTO bench_postings (event_id, line, position, account, amount, recorded_at)"
            " SELECT event_id, g, position, 'user:' || (data->>'lenser_id') || ':available', 1, recorded_at"
            " FROM events CROSS JOIN generate_series(0, 1) AS g WHERE type = ANY($1)",
            types,
        )
        elapsed = time.perf_counter() - t
        await conn.execute("DROP TABLE bench_postings")
    return int(status.split()[-1]) // 2, elapsed
