"""A random mix of 10,000 wallet operations: the ledger always balances, and rebuilds row for row.

Hypothesis draws 20 sequences of about 500 operations (grants, purchases, refunds, reservations,
captures, releases, extensions and expiries, with reused reference ids so that retries and conflicts happen).
Each sequence runs on fresh lensers against one real database; the assertions read the ledger as
the follower wrote it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lf_pg import create_pool, migrate
from lf_pg.pool import connect
from lf_projections import catch_up, rebuild
from lf_testing import infra
from wallet_api.app import MIGRATIONS, SCHEMA
from wallet_api.application.use_cases import Wallets
from wallet_api.domain.commands import (
    Capture,
    CreditPurchase,
    Extend,
    Grant,
    Release,
    Reserve,
    ReversePurchase,
    Settle,
)
from wallet_api.domain.errors import WalletError
from wallet_api.projections import ALL, LEDGER

LENSERS = 3
who = st.integers(0, LENSERS - 1)
operation = st.one_of(
    st.tuples(st.just("grant"), who, st.integers(1, 100)),
    st.tuples(st.just("purchase"), who, st.integers(0, 4), st.integers(1, 200)),
    st.tuples(st.just("refund"), who, st.integers(0, 4), st.integers(0, 250)),
    st.tuples(st.just("reserve"), who, st.integers(1, 80), st.integers(0, 40)),
    st.tuples(st.just("capture"), st.integers(0, 60), st.integers(0, 100)),
    st.tuples(st.just("settle"), st.integers(0, 60), st.integers(0, 100)),
    st.tuples(st.just("release"), st.integers(0, 60)),
    st.tuples(st.just("extend"), st.integers(0, 60), st.integers(1, 90)),
    st.tuples(st.just("expire"), st.integers(1, 10)),
)
META = {"actor": "property-test"}


async def run_operations(dsn: str, operations: list[tuple]) -> None:
    clock = [datetime(2026, 11, 22, tzinfo=UTC)]
    pool = await create_pool(dsn, SCHEMA, role="wallet_api", min_size=1, max_size=2)
    wallets = Wallets(
        pool, clock=lambda _database_now: clock[0], reservation_max_lifetime=timedelta(minutes=30)
    )
    lensers = [uuid4() for _ in range(LENSERS)]
    reservations: list[UUID] = []
    try:
        for op in operations:
            try:
                match op:
                    case ("grant", i, amount):
                        await wallets.grant(
                            Grant(lensers[i], amount, reason="grant", idempotency_key=str(uuid4())),
                            metadata=META,
                        )
                    case ("purchase", i, order, credits):
                        await wallets.credit_purchase(
                            CreditPurchase(lensers[i], f"o{order}", credits, description="pack"),
                            metadata=META,
                        )
                    case ("refund", i, order, total):
                        await wallets.reverse_purchase(
                            ReversePurchase(lensers[i], f"o{order}", total), metadata=META
                        )
                    case ("reserve", i, amount, ref):
                        found, _ = await wallets.reserve(
                            Reserve(lensers[i], amount, f"r{ref}", ttl=timedelta(minutes=5)), metadata=META
                        )
                        reservations.append(found.reservation_id)
                    case ("capture", k, amount) if reservations:
                        await wallets.capture(
                            Capture(reservations[k % len(reservations)], amount), metadata=META
                        )
                    case ("settle", k, amount) if reservations:
                        await wallets.settle(
                            Settle(reservations[k % len(reservations)], amount), metadata=META
                        )
                    case ("extend", k, minutes) if reservations:
                        await wallets.extend(
                            Extend(reservations[k % len(reservations)], timedelta(minutes=minutes)),
                            metadata=META,
                        )
                    case ("release", k) if reservations:
                        await wallets.release(Release(reservations[k % len(reservations)]), metadata=META)
                    case ("expire", minutes):
                        clock[0] += timedelta(minutes=minutes)
                        await wallets.expire_due()
            except WalletError:
                pass  # a refusal is a valid outcome; the invariants below must hold either way
        await catch_up(pool, LEDGER)
        await assert_ledger_invariants(pool, lensers)
    finally:
        await pool.close()


async def assert_ledger_invariants(pool, lensers: list[UUID]) -> None:
    assert await pool.fetchval("SELECT coalesce(sum(amount), 0) FROM ledger_postings") == 0, "trial balance"
    # No user account is ever negative: not at the end, not after any posting.
    lowest = await pool.fetchval(
        "SELECT min(running) FROM (SELECT sum(amount) OVER (PARTITION BY account ORDER BY position, line)"
        " AS running FROM ledger_postings WHERE account LIKE 'user:%') AS history"
    )
    assert lowest is None or lowest >= 0
    for lenser in lensers:
        row = await pool.fetchrow("SELECT balance, reserved FROM balances WHERE lenser_id = $1", lenser)
        if row is None:
            continue
        posted = await pool.fetchrow(
            "SELECT coalesce(sum(amount) FILTER (WHERE account = $1), 0) AS available,"
            " coalesce(sum(amount) FILTER (WHERE account = $2), 0) AS reserved FROM ledger_postings",
            f"user:{lenser}:available",
            f"user:{lenser}:reserved",
        )
        assert (row["balance"], row["reserved"]) == (
            posted["available"] + posted["reserved"],
            posted["reserved"],
        )
    # What late settlements could not charge is owed on the uncollected accounts, to the credit.
    owed = await pool.fetchval(
        "SELECT coalesce(-sum(amount), 0) FROM ledger_postings WHERE account LIKE 'uncollected:%'"
    )
    assert owed == await pool.fetchval("SELECT coalesce(sum(uncollected), 0) FROM reservations")
    # Every transaction's balanceAfter is the sum of that user's postings up to it.
    mismatched = await pool.fetchval(
        "SELECT count(*) FROM transactions t WHERE t.balance_after <> (SELECT coalesce(sum(p.amount), 0)"
        " FROM ledger_postings p WHERE p.account IN ('user:' || t.lenser_id || ':available',"
        " 'user:' || t.lenser_id || ':reserved') AND p.position <= t.position)"
    )
    assert mismatched == 0


async def rows_of(dsn: str) -> dict[str, list]:
    pool = await create_pool(dsn, SCHEMA, role="wallet_api", min_size=1, max_size=1)
    try:
        return {
            table: [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY {table}::text")]
            for projection in ALL.values()
            for table in projection.tables
        }
    finally:
        await pool.close()


async def rebuild_all(dsn: str) -> None:
    conn = await connect(dsn, SCHEMA, role="wallet_api")
    try:
        for projection in ALL.values():
            await rebuild(conn, SCHEMA, projection, follower_name=projection.follower_name)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def database():
    dsn = asyncio.run(infra.create_database())
    asyncio.run(migrate(dsn, SCHEMA, MIGRATIONS, role="wallet_api"))
    yield dsn
    asyncio.run(infra.drop_database(dsn))


def test_a_random_mix_of_10000_operations_keeps_the_ledger_balanced_and_rebuilds_row_for_row(database):
    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(st.lists(operation, min_size=500, max_size=500))
    def sequence(operations):
        asyncio.run(run_operations(database, operations))

    sequence()
    live = asyncio.run(rows_of(database))
    assert sum(len(rows) for rows in live.values()) > 10_000
    asyncio.run(rebuild_all(database))
    assert asyncio.run(rows_of(database)) == live
