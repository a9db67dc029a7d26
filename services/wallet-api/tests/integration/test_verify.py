"""``python -m wallet_api verify``: the snapshots and every read model against a replay of the log.

The wallet is driven through its use cases (no background workers): the ledger then moves only when
the test catches it up, which is how a follower that lags the log is set up on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from lf_pg.pool import connect
from lf_projections import catch_up
from lf_projections.verify import verify
from lf_testing.processes import operator_command
from wallet_api.app import SCHEMA
from wallet_api.application.use_cases import Wallets
from wallet_api.domain.commands import Capture, CreditPurchase, Extend, Grant, Release, Reserve
from wallet_api.projections import LEDGER
from wallet_api.verification import VERIFIABLE

META = {"actor": "test"}


async def run_verify(settings) -> tuple[int, list[str]]:
    return await operator_command(
        "wallet_api", "verify", database_url=settings.database_url, db_role=settings.db_role
    )


@pytest.fixture
async def superuser(settings) -> AsyncIterator[asyncpg.Connection]:
    """The database's superuser on the wallet schema: how an operator (or an intruder) forges rows."""
    conn = await connect(settings.database_url, SCHEMA)
    yield conn
    await conn.close()


@pytest.fixture
def wallets(db) -> Wallets:
    return Wallets(db)


async def busy_history(wallets: Wallets, db) -> tuple[UUID, UUID]:
    """Two wallets: a busy one whose stream crossed a snapshot (every 50 events), and a quiet one
    with a captured, a released and an extended open reservation. The ledger is caught up."""
    busy, quiet = uuid4(), uuid4()
    for i in range(55):
        await wallets.grant(Grant(busy, 10, reason="promo", idempotency_key=f"g{i}"), metadata=META)
    await wallets.credit_purchase(
        CreditPurchase(quiet, "order-1", 100, description="100 credits"), metadata=META
    )
    kept, _ = await wallets.reserve(Reserve(quiet, 30, "exec-1"), metadata=META)
    await wallets.capture(Capture(kept.reservation_id, 25), metadata=META)
    dropped, _ = await wallets.reserve(Reserve(quiet, 20, "exec-2"), metadata=META)
    await wallets.release(Release(dropped.reservation_id), metadata=META)
    streaming, _ = await wallets.reserve(Reserve(quiet, 5, "exec-3"), metadata=META)
    await wallets.extend(Extend(streaming.reservation_id, timedelta(minutes=30)), metadata=META)
    await catch_up(db, LEDGER)
    return busy, quiet


async def test_verify_exits_0_and_says_what_it_compared_when_everything_agrees(settings, wallets, db):
    await busy_history(wallets, db)
    code, lines = await run_verify(settings)
    assert code == 0, lines
    assert lines[-1] == "wallet-api: no differences"
    assert "streams: 2 streams replayed, 1 snapshots compared, 0 differences" in lines
    [ledger] = [line for line in lines if line.startswith("ledger:")]
    assert ledger.endswith("rows compared, 0 differences") and "at its checkpoint" in ledger


async def test_a_forged_snapshot_is_caught_with_the_stream_the_field_and_both_values(
    settings, wallets, db, superuser
):
    busy, _ = await busy_history(wallets, db)
    stream = f"wallet-{busy}"
    at = await superuser.fetchval("SELECT snapshot_version FROM streams WHERE stream_id = $1", stream)
    assert at is not None
    # 1,000,000 credits the log never granted: the next command would load them from the snapshot.
    await superuser.execute(
        "UPDATE streams SET snapshot = jsonb_set(snapshot, '{balance}', '1000000') WHERE stream_id = $1",
        stream,
    )
    code, lines = await run_verify(settings)
    assert code == 1
    expected_balance = 10 * at - 10  # every event after WalletOpened granted 10
    assert (
        f"stream {stream} [snapshot at version {at}]: expected {{balance={expected_balance}}},"
        " found {balance=1000000}"
    ) in lines
    assert lines[-1] == "wallet-api: 1 difference"


async def test_a_changed_a_missing_and_an_extra_read_model_row_are_each_caught(
    settings, wallets, db, superuser
):
    _, quiet = await busy_history(wallets, db)
    await superuser.execute("UPDATE balances SET balance = balance + 5 WHERE lenser_id = $1", quiet)
    await superuser.execute("DELETE FROM reservations WHERE reference_id = 'exec-2'")
    intruder = uuid4()
    await superuser.execute(
        "INSERT INTO ledger_postings (event_id, line, position, account, amount, recorded_at)"
        " VALUES ($1, 0, 1, 'platform:revenue', 7, now())",
        intruder,
    )

    code, lines = await run_verify(settings)

    assert code == 1
    assert f"balances [lenser_id={quiet}]: expected {{balance=75}}, found {{balance=80}}" in lines
    [missing] = [line for line in lines if line.startswith("reservations [")]
    assert '"reference_id": "exec-2"' not in missing  # rows show as name=value pairs
    assert 'reference_id="exec-2"' in missing and missing.endswith("found nothing")
    [extra] = [line for line in lines if line.startswith("ledger_postings [")]
    assert extra.startswith(f"ledger_postings [event_id={intruder}, line=0]: expected nothing, found {{")
    assert 'account="platform:revenue"' in extra and "amount=7" in extra
    assert lines[-1] == "wallet-api: 3 differences"


async def test_the_ledger_is_compared_at_its_own_checkpoint_not_at_the_head_of_the_log(
    settings, wallets, db, superuser
):
    _, quiet = await busy_history(wallets, db)
    # The ledger follower is behind: these are in the log, not yet in the ledger, and that is fine.
    await wallets.grant(Grant(quiet, 40, reason="late", idempotency_key="late-1"), metadata=META)
    await wallets.grant(Grant(uuid4(), 15, reason="late", idempotency_key="late-2"), metadata=META)

    [_, *_, ledger] = await verify(settings.database_url, SCHEMA, VERIFIABLE, role=settings.db_role)
    assert (ledger.subject, ledger.differences) == ("ledger", [])

    # A posting the ledger made before its checkpoint, changed: caught even while it lags.
    await superuser.execute(
        "UPDATE ledger_postings SET amount = amount + 1 WHERE account = $1 AND amount = 100",
        f"user:{quiet}:available",
    )
    [_, *_, ledger] = await verify(settings.database_url, SCHEMA, VERIFIABLE, role=settings.db_role)
    [difference] = ledger.differences
    assert (difference.where, difference.expected, difference.found) == (
        "ledger_postings",
        {"amount": 100},
        {"amount": 101},
    )


async def test_verify_racing_live_commands_sees_one_consistent_moment_and_reports_nothing(
    settings, wallets, db
):
    await busy_history(wallets, db)
    lenser = uuid4()
    done = asyncio.Event()

    async def traffic() -> int:
        n = 0
        while not done.is_set():
            await wallets.grant(Grant(lenser, 1, reason="race", idempotency_key=f"r{n}"), metadata=META)
            n += 1
        return n

    writer = asyncio.create_task(traffic())
    try:
        for _ in range(3):
            findings = await verify(settings.database_url, SCHEMA, VERIFIABLE, role=settings.db_role)
            assert [str(d) for f in findings for d in f.differences] == []
    finally:
        done.set()
    assert await writer > 0
