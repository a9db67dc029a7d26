"""Rebuilds racing live commands: the rebuilt read models equal the live ones, nothing is skipped."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from lf_contracts.events import OrderRefundedV1
from lf_eventstore import Wakeup
from lf_messaging import Broker, Consumer, MessageContext
from lf_pg import DatabaseAccess
from lf_projections import FollowerRunner, catch_up, rebuild
from lf_projections.follower import FOLLOWER_ERRORS
from lf_testing.tokens import bearer
from wallet_api.app import SCHEMA, create_app
from wallet_api.application.use_cases import Wallets
from wallet_api.domain.commands import Capture, CreditPurchase, Grant, Reserve
from wallet_api.handlers.billing import on_order_refunded
from wallet_api.projections import ALL, LEDGER

META = {"actor": "test"}


async def test_a_command_in_flight_during_a_ledger_rebuild_is_still_posted(settings, db):
    wallets = Wallets(db)
    early, late = uuid4(), uuid4()
    await wallets.grant(Grant(uuid4(), 5, reason="x", idempotency_key="k0"), metadata=META)

    async with db.acquire() as slow, slow.transaction():
        # An HTTP grant whose transaction is still open (xid X1) ...
        await wallets.on(slow).grant(Grant(early, 70, reason="x", idempotency_key="k1"), metadata=META)
        # ... while another one (xid X2 > X1) commits.
        await wallets.grant(Grant(late, 30, reason="x", idempotency_key="k2"), metadata=META)
        # An operator runs `python -m wallet_api projections rebuild ledger` now.
        conn = await DatabaseAccess.of(settings, SCHEMA).connect_owner()
        try:
            await rebuild(conn, SCHEMA, LEDGER, follower_name=LEDGER.name)
        finally:
            await conn.close()
    # The slow grant commits; the ledger follower goes on.
    await catch_up(db, LEDGER)

    posted = await db.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM ledger_postings WHERE account = $1", f"user:{early}:available"
    )
    balance = await db.fetchval("SELECT balance FROM balances WHERE lenser_id = $1", early)
    assert balance == 70
    assert posted == balance


async def test_rebuilt_balances_equal_live_after_a_refund_message_races_a_grant(settings, db):
    wallets = Wallets(db)
    lenser = uuid4()
    # Bought 100 credits (order o1) and spent them all.
    await wallets.credit_purchase(CreditPurchase(lenser, "o1", 100, description="pack"), metadata=META)
    reservation, _ = await wallets.reserve(Reserve(lenser, 100, "exec-1"), metadata=META)
    await wallets.capture(Capture(reservation.reservation_id, 100), metadata=META)

    # The consumer receives billing.order_refunded.v1 for o1 (the real Consumer._apply: inbox row,
    # then the handler in the same transaction). While its handler runs, an admin grant of 50
    # credits on the same wallet commits first (it wins the stream lock).
    consumer = Consumer("wallet-api", Broker(settings.amqp_url), db, {})

    async def handler(conn, event, context):
        await wallets.grant(Grant(lenser, 50, reason="promo", idempotency_key="g1"), metadata=META)
        await on_order_refunded(conn, event, context, wallets=wallets)

    event = OrderRefundedV1(
        occurred_at=datetime.now(UTC),
        order_id="o1",
        lenser_id=lenser,
        credits_refunded_total=100,
        refunded_amount_cents=500,
    )
    context = MessageContext(str(uuid4()), OrderRefundedV1.routing_key, "c", None, {}, False)
    assert await consumer._apply(handler, event, context)

    live = dict(
        await db.fetchrow(
            "SELECT balance, reserved, lifetime_deposits, lifetime_spent FROM balances WHERE lenser_id = $1",
            lenser,
        )
    )
    assert live["balance"] == 0  # 100 in, 100 spent, +50 grant, 50 taken back

    conn = await DatabaseAccess.of(settings, SCHEMA).connect_owner()
    try:
        await rebuild(conn, SCHEMA, ALL["balances"])
    finally:
        await conn.close()
    rebuilt = dict(
        await db.fetchrow(
            "SELECT balance, reserved, lifetime_deposits, lifetime_spent FROM balances WHERE lenser_id = $1",
            lenser,
        )
    )
    assert rebuilt == live


class LedgerPausingAfterItsCheckpointLock:
    """The real ledger, pausing between its runner's checkpoint lock and its first write: the moment
    a swap that locked the tables first and the checkpoint second would deadlock with it."""

    name, types = LEDGER.name, LEDGER.types

    async def handle_batch(self, conn, events):
        await asyncio.sleep(0.01)
        await LEDGER.handle_batch(conn, events)


BALANCES = ALL["balances"]


async def read_model_rows(db) -> dict[str, list[tuple]]:
    return {
        table: [tuple(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY {table}::text")]
        for table in (*LEDGER.tables, *BALANCES.tables)
    }


async def test_rebuilds_racing_the_live_runner_and_commands_50_times_never_deadlock_and_give_the_same_rows(
    settings, db
):
    wallets = Wallets(db)
    lensers = [uuid4() for _ in range(4)]
    wakeup = Wakeup(settings.database_url, SCHEMA, role=settings.db_role)
    runner = FollowerRunner(
        LedgerPausingAfterItsCheckpointLock(),
        db,
        wakeup,
        dsn=settings.database_url,
        schema=SCHEMA,
        role=settings.db_role,
        poll_seconds=0.05,
        batch_size=3,
    )
    failed_batches = FOLLOWER_ERRORS.labels(LEDGER.name)._value.get()
    stop = asyncio.Event()

    async def commands() -> None:  # live traffic all along
        n = 0
        while not stop.is_set():
            n += 1
            await wallets.grant(
                Grant(lensers[n % 4], 1 + n % 7, reason="x", idempotency_key=f"k{n}"), metadata=META
            )
            await asyncio.sleep(0.01)  # steady traffic, not a log that outgrows the test

    live = [asyncio.create_task(runner.run()), asyncio.create_task(commands())]
    owner = await DatabaseAccess.of(settings, SCHEMA).connect_owner()
    try:
        for _ in range(50):
            await asyncio.wait_for(rebuild(owner, SCHEMA, LEDGER, follower_name=LEDGER.name), 30)
            await asyncio.wait_for(rebuild(owner, SCHEMA, BALANCES), 30)  # inline, commands racing
        stop.set()
        await live[1]
        await catch_up(db, LEDGER)
        assert FOLLOWER_ERRORS.labels(LEDGER.name)._value.get() == failed_batches  # no deadlock victim
        before = await read_model_rows(db)
        await rebuild(owner, SCHEMA, LEDGER, follower_name=LEDGER.name)
        await rebuild(owner, SCHEMA, BALANCES)
        assert await read_model_rows(db) == before
    finally:
        stop.set()
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        await owner.close()
        await wakeup.close()
    balances = dict(await db.fetch("SELECT lenser_id, balance FROM balances"))
    for lenser in lensers:
        posted = await db.fetchval(
            "SELECT sum(amount) FROM ledger_postings WHERE account = $1", f"user:{lenser}:available"
        )
        assert posted == balances[lenser]
    assert await db.fetchval("SELECT sum(amount) FROM ledger_postings") == 0


SEED_WALLETS = """
WITH lensers AS MATERIALIZED (SELECT gen_random_uuid() AS id FROM generate_series(1, $1))
INSERT INTO events (stream_id, version, event_id, type, data)
SELECT 'wallet-' || id, v, gen_random_uuid(),
       CASE v WHEN 1 THEN 'WalletOpened' ELSE 'CreditsDeposited' END,
       jsonb_build_object('lenser_id', id, 'at', now())
       || CASE v WHEN 1 THEN '{}'::jsonb ELSE jsonb_build_object('amount', 10, 'source', 'grant',
            'reference_id', 'seed-' || id, 'description', 'seed', 'balance_after', 10) END
FROM lensers, generate_series(1, 2) AS v
ORDER BY v, id
"""


async def test_balances_answer_within_a_second_while_every_projection_is_rebuilt(settings, db):
    # A log big enough that rebuilding it takes seconds (a real one takes longer).
    await db.execute(SEED_WALLETS, 10_000)
    lenser = uuid4()
    owner = await DatabaseAccess.of(settings, SCHEMA).connect_owner()
    admin = await asyncpg.connect(settings.database_url)
    async with TestClient(TestServer(create_app(settings, background=False))) as api:
        granted = await api.post(
            f"/internal/wallets/{lenser}/grants",
            json={"amount": 70, "reason": "x", "idempotencyKey": "k"},
            headers={"X-Platform-Api-Key": settings.platform_api_key},
        )
        assert granted.status == 201

        async def rebuild_everything() -> None:  # what `python -m wallet_api projections rebuild` does
            for projection in ALL.values():
                await rebuild(owner, SCHEMA, projection, follower_name=projection.follower_name)

        transaction_ages: list[float] = [0.0]

        async def watch_the_rebuilds_transactions() -> None:
            # How long its current transaction has held a transaction id, which holds back the
            # reading horizon of every follower on the server. (The test's login sees every session.)
            while True:
                age = await admin.fetchval(
                    "SELECT extract(epoch FROM clock_timestamp() - xact_start) FROM pg_stat_activity"
                    " WHERE pid = $1 AND backend_xid IS NOT NULL",
                    owner.get_server_pid(),
                )
                transaction_ages.append(float(age or 0))
                await asyncio.sleep(0.05)

        rebuilding = asyncio.create_task(rebuild_everything())
        watching = asyncio.create_task(watch_the_rebuilds_transactions())
        answered_in: list[float] = []
        try:
            while not rebuilding.done():
                started = time.monotonic()
                response = await api.get("/wallet/balance", headers=bearer(lenser))
                answered_in.append(time.monotonic() - started)
                assert response.status == 200
                assert (await response.json())["data"]["balance"] == 70
                await asyncio.sleep(0.1)
            await rebuilding
        finally:
            rebuilding.cancel()
            watching.cancel()
            await asyncio.gather(rebuilding, watching, return_exceptions=True)
            await owner.close()
            await admin.close()
    assert len(answered_in) >= 10, "the rebuild was over too soon to show anything"
    assert max(answered_in) < 1.0, sorted(answered_in)[-5:]
    assert max(transaction_ages) < 1.0, sorted(transaction_ages)[-5:]
    assert await db.fetchval("SELECT count(*) FROM balances") == 10_001
