"""``python -m billing_webhook verify``: the snapshots and every read model against a replay of the log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from billing_webhook.app import SCHEMA
from lf_pg.pool import connect
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.processes import operator_command


async def run_verify(settings) -> tuple[int, list[str]]:
    return await operator_command(
        "billing_webhook", "verify", database_url=settings.database_url, db_role=settings.db_role
    )


@pytest.fixture
async def superuser(settings) -> AsyncIterator[asyncpg.Connection]:
    """The database's superuser on the billing schema: how an operator (or an intruder) forges rows."""
    conn = await connect(settings.database_url, SCHEMA)
    yield conn
    await conn.close()


async def history(billing, lenser) -> None:
    """A pack repriced until its stream took a snapshot (every 100 events), a paid order and a
    subscription, every delivery processed."""
    for cents in range(100, 200):
        await billing.pack("v-100", credits=100, price_cents=cents)
    session = await billing.session(lenser)
    await billing.accepted(ls.order(51, session_id=session, variant_id="v-100", total=500))
    await billing.accepted(ls.subscription("52", session_id=session, variant_id="v-100"))
    await billing.settled()


async def test_verify_exits_0_and_says_what_it_compared_when_everything_agrees(billing, lenser):
    await history(billing, lenser)
    code, lines = await run_verify(billing.settings)
    assert code == 0, lines
    assert lines[-1] == "billing-webhook: no differences"
    [streams] = [line for line in lines if line.startswith("streams:")]
    assert streams.endswith("streams replayed, 1 snapshots compared, 0 differences")
    for name in ("credit_packs", "checkout_sessions", "deliveries", "subscriptions"):
        [line] = [line for line in lines if line.startswith(f"{name}:")]
        assert "at the head of the log" in line and line.endswith(", 0 differences")


async def test_forged_snapshots_are_caught_whether_one_was_taken_or_not(billing, lenser, superuser):
    await history(billing, lenser)
    # The pack's real snapshot now grants a million credits per order ...
    await superuser.execute(
        "UPDATE streams SET snapshot = jsonb_set(snapshot, '{terms,credits_granted}', '1000000')"
        " WHERE stream_id = 'credit-pack-v-100'"
    )
    # ... and the order, which never had one, gets one saying 90 of its credits were refunded.
    await superuser.execute(
        "UPDATE streams SET snapshot_version = 1, snapshot = jsonb_build_object('order_id', '51',"
        " 'lenser_id', $1::text, 'credits', 100, 'credits_refunded_total', 90, 'refund_awaiting', null)"
        " WHERE stream_id = 'order-51'",
        str(lenser),
    )

    code, lines = await run_verify(billing.settings)

    assert code == 1
    assert (
        "stream credit-pack-v-100 [snapshot at version 100]: expected {terms.credits_granted=100},"
        " found {terms.credits_granted=1000000}"
    ) in lines
    assert (
        "stream order-51 [snapshot at version 1]: expected {credits_refunded_total=0},"
        " found {credits_refunded_total=90}"
    ) in lines
    assert lines[-1] == "billing-webhook: 2 differences"


async def test_a_changed_a_missing_and_an_extra_read_model_row_are_each_caught(billing, lenser, superuser):
    await history(billing, lenser)
    await superuser.execute("UPDATE deliveries SET status = 'failed' WHERE resource_id = '51'")
    await superuser.execute("DELETE FROM checkout_sessions")
    await superuser.execute(
        "INSERT INTO credit_packs (variant_id, product_id, name, price_cents, credits_granted, test_mode,"
        " active, defined_at, updated_at) VALUES ('v-free', 'p-1', 'free credits', 0, 5000, false, true,"
        " now(), now())"
    )

    code, lines = await run_verify(billing.settings)

    assert code == 1
    [changed] = [line for line in lines if line.startswith("deliveries [")]
    assert changed.endswith('expected {status="processed"}, found {status="failed"}')
    [missing] = [line for line in lines if line.startswith("checkout_sessions [")]
    assert f'lenser_id="{lenser}"' in missing and missing.endswith("found nothing")
    [extra] = [line for line in lines if line.startswith("credit_packs [")]
    assert extra.startswith("credit_packs [variant_id=v-free]: expected nothing, found {variant_id=")
    assert lines[-1] == "billing-webhook: 3 differences"
