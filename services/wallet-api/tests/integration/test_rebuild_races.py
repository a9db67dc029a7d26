"""Rebuilds racing live commands: the rebuilt read models equal the live ones, nothing is skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from lf_contracts.events import OrderRefundedV1
from lf_messaging import Broker, Consumer, MessageContext
from lf_pg import DatabaseAccess
from lf_projections import catch_up, rebuild
from wallet_api.app import SCHEMA
from wallet_api.application.commands import Wallets
from wallet_api.handlers.billing import on_order_refunded
from wallet_api.projections import ALL, LEDGER

META = {"actor": "test"}


async def test_a_command_in_flight_during_a_ledger_rebuild_is_still_posted(settings, db):
    wallets = Wallets(db)
    early, late = uuid4(), uuid4()
    await wallets.grant(uuid4(), 5, reason="x", idempotency_key="k0", metadata=META)

    async with db.acquire() as slow, slow.transaction():
        # An HTTP grant whose transaction is still open (xid X1) ...
        await wallets.on(slow).grant(early, 70, reason="x", idempotency_key="k1", metadata=META)
        # ... while another one (xid X2 > X1) commits.
        await wallets.grant(late, 30, reason="x", idempotency_key="k2", metadata=META)
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
    await wallets.credit_purchase(lenser, "o1", 100, description="pack", metadata=META)
    reservation, _ = await wallets.reserve(lenser, 100, "exec-1", metadata=META)
    await wallets.capture(reservation.reservation_id, 100, metadata=META)

    # The consumer receives billing.order_refunded.v1 for o1 (the real Consumer._apply: inbox row,
    # then the handler in the same transaction). While its handler runs, an admin grant of 50
    # credits on the same wallet commits first (it wins the stream lock).
    consumer = Consumer("wallet-api", Broker(settings.amqp_url), db, {})

    async def handler(conn, event, context):
        await wallets.grant(lenser, 50, reason="promo", idempotency_key="g1", metadata=META)
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
