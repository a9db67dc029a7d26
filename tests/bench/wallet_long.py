# ruff: noqa: E501 - long SQL and prose lines
"""The long wallet: a million events written in SQL, checked against ``Wallet`` itself."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from common import logger
from wallet_app import (
    BIG_DEPOSIT,
    EVENT_TYPES,
    INLINE,
    META,
    REPOSITORY,
    CreditsReserved,
    ReservationReleased,
    Wallet,
)

from lf_eventstore import RecordedEvent
from lf_eventstore.store import load_stream

log = logger("bench")


BULK_SQL = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata, recorded_at)
SELECT $1::text, v, gen_random_uuid(),
       CASE WHEN v % 2 = 1 THEN 'CreditsReserved' ELSE 'ReservationReleased' END,
       CASE WHEN v % 2 = 1 THEN jsonb_build_object(
                'lenser_id', $2::text,
                'at', to_char(($3::timestamptz + v * interval '1 second') AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'reservation_id', md5($1::text || '/' || ((v - 1) / 2))::uuid::text,
                'reference_id', 'bulk-' || ((v - 1) / 2),
                'amount', 1,
                'expires_at', to_char(($3::timestamptz + (v + 300) * interval '1 second') AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                -- A reserve records its hard deadline; here no later than its expiry (never extended).
                'max_expires_at', to_char(($3::timestamptz + (v + 300) * interval '1 second') AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
            ELSE jsonb_build_object(
                'lenser_id', $2::text,
                'at', to_char(($3::timestamptz + v * interval '1 second') AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'reservation_id', md5($1::text || '/' || ((v - 1) / 2))::uuid::text,
                'reference_id', 'bulk-' || ((v - 1) / 2),
                'amount', 1,
                'reason', 'released')
       END,
       $5::jsonb,
       $3::timestamptz + v * interval '1 second'
FROM generate_series($6::int, $4::int) AS v
"""

# What the reservations projection would hold for those pairs (one row per pair, released; the deadline
# the events carry is their expiry).
BULK_RESERVATIONS_SQL = """
INSERT INTO reservations (reservation_id, lenser_id, reference_id, amount, status, expires_at, max_expires_at,
                          created_at, closed_at)
SELECT md5($1::text || '/' || p)::uuid, $2::uuid, 'bulk-' || p, 1, 'released',
       $3::timestamptz + (2 * p + 1 + 300) * interval '1 second',
       $3::timestamptz + (2 * p + 1 + 300) * interval '1 second',
       $3::timestamptz + (2 * p + 1) * interval '1 second',
       $3::timestamptz + (2 * p + 2) * interval '1 second'
FROM generate_series(1, ($4::int - 2) / 2) AS p
"""


def granted_wallet(lenser_id: UUID, start: dt.datetime) -> Wallet:
    """The long wallet's first two events: opened at ``start``, then the big deposit."""
    wallet = Wallet.open_for(lenser_id, start)
    wallet.deposit(
        BIG_DEPOSIT,
        source="grant",
        reference_id="bulk",
        description="bench",
        at=start + dt.timedelta(seconds=2),
    )
    return wallet


def expected_bulk_snapshot(lenser_id: UUID, start: dt.datetime, events: int) -> tuple[Wallet, dict[str, Any]]:
    """The aggregate as ``Wallet`` itself computes it after the bulk stream: opened, one deposit, then
    reserve/release pairs, each of which leaves the state as it found it (checked on a real pair)."""
    wallet = granted_wallet(lenser_id, start)
    before = wallet.to_snapshot()
    rid = uuid4()
    at = start + dt.timedelta(seconds=3)
    wallet._apply(
        CreditsReserved(
            lenser_id=lenser_id,
            at=at,
            reservation_id=rid,
            reference_id="x",
            amount=1,
            expires_at=at + dt.timedelta(seconds=300),
        )
    )
    wallet._apply(
        ReservationReleased(
            lenser_id=lenser_id, at=at, reservation_id=rid, reference_id="x", amount=1, reason="released"
        )
    )
    assert wallet.to_snapshot() == before, "a reserve/release pair changed the wallet's state"
    wallet.version = events
    wallet._pending.clear()
    return wallet, wallet.to_snapshot()


async def build_big_wallet(pool: asyncpg.Pool, events: int) -> tuple[UUID, dict[str, Any]]:
    lenser_id = uuid4()
    stream = REPOSITORY.stream_id(lenser_id)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=events + 3600)).replace(microsecond=0)
    _, snapshot = expected_bulk_snapshot(lenser_id, start, events)
    async with pool.acquire() as conn:
        # Versions 1-2 through the real code: the streams row, the balances and deposits rows.
        async with conn.transaction():
            wallet = granted_wallet(lenser_id, start)
            recorded = await REPOSITORY.save(conn, lenser_id, wallet, metadata=META)
            for projection in INLINE:
                await projection.apply(conn, recorded)
        t = time.perf_counter()
        chunk = 250_000
        for first in range(3, events + 1, chunk):
            last = min(events, first + chunk - 1)
            await conn.execute(BULK_SQL, stream, str(lenser_id), start, last, META, first)
        await conn.execute(BULK_RESERVATIONS_SQL, stream, str(lenser_id), start, events)
        await conn.execute(
            "UPDATE streams SET version = $2, snapshot = $3, snapshot_version = $2 WHERE stream_id = $1",
            stream,
            events,
            snapshot,
        )
        await conn.execute(
            "UPDATE balances SET updated_at = $2 WHERE lenser_id = $1",
            lenser_id,
            start + dt.timedelta(seconds=events),
        )
        log(f"long wallet: {events} events inserted in {time.perf_counter() - t:.1f}s")
    return lenser_id, snapshot


async def verify_big_wallet(
    pool: asyncpg.Pool, lenser_id: UUID, snapshot: dict[str, Any], events: int
) -> dict:
    """Sanity checks before measuring; raises if the SQL-built stream is not what the code would write."""
    stream = REPOSITORY.stream_id(lenser_id)
    facts: dict[str, Any] = {}
    async with pool.acquire() as conn:
        # 1. The generated rows are exactly what the domain events serialise to.
        rows = await conn.fetch(
            "SELECT version, type, data FROM events WHERE stream_id = $1 AND (version <= 6 OR version > $2)"
            " ORDER BY version",
            stream,
            events - 4,
        )
        for row in rows:
            model = EVENT_TYPES[row["type"]].model_validate(row["data"])
            assert model.model_dump(mode="json") == row["data"], (row["version"], row["data"])
        # 2. Replaying the first 1,000 stored events through the aggregate gives the snapshot we stored.
        replayed = Wallet()
        state = await conn.fetch(
            "SELECT position, transaction_id::text::bigint AS transaction_id, stream_id, version, event_id, type,"
            " data, metadata, recorded_at FROM events WHERE stream_id = $1 AND version <= 1000 ORDER BY version",
            stream,
        )
        for row in state:
            replayed.replay(RecordedEvent(**dict(row)))
        assert replayed.to_snapshot() == snapshot, "replay of the stored stream disagrees with the snapshot"
        # 3. The repository loads it from the snapshot, reading only the events after it.
        head = await load_stream(conn, stream)
        assert head is not None and head.version == events and head.snapshot_version == events
        assert len(head.events) == head.version - head.snapshot_version == 0
        wallet = await REPOSITORY.load(conn, lenser_id, lock=False)
        assert wallet is not None and wallet.version == events
        assert (wallet.balance, wallet.reserved, wallet.available) == (BIG_DEPOSIT, 0, BIG_DEPOSIT)
        assert wallet.to_snapshot() == snapshot
        balance = await conn.fetchrow(
            "SELECT balance, reserved FROM balances WHERE lenser_id = $1", lenser_id
        )
        assert (balance["balance"], balance["reserved"]) == (BIG_DEPOSIT, 0)
        count = await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream)
        assert count == events, count
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM events"
            " WHERE stream_id = $1 AND version > $2 ORDER BY version",
            stream,
            events,
        )
        facts["plan"] = "; ".join(
            re.sub(r"\s+", " ", row[0].strip().lstrip("-> ")) for row in plan if "Scan" in row[0]
        )
        facts["stored_events"] = count
    log(f"long wallet verified: balance {BIG_DEPOSIT}, snapshot at v{events}, plan: {facts['plan']}")
    return facts
