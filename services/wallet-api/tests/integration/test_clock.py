"""Spending windows (UTC day and month) run on the database's clock, not on each replica's."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4

import pytest
from freezegun import freeze_time

from lf_pg import create_pool
from wallet_api.app import SCHEMA
from wallet_api.application.use_cases import Wallets
from wallet_api.domain import errors
from wallet_api.domain.commands import Capture, Grant, Reserve, SetLimits

META = {"actor": "clock-test"}


@pytest.fixture
async def pool(settings):
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_a_replica_whose_clock_is_a_day_ahead_still_applies_todays_daily_cap(pool):
    lenser = uuid4()
    wallets = Wallets(pool)
    await wallets.grant(Grant(lenser, 1000, reason="grant", idempotency_key="g"), metadata=META)
    await wallets.set_limits(SetLimits(lenser, daily=50, monthly=None), metadata=META)
    spent, _ = await wallets.reserve(Reserve(lenser, 30, "today"), metadata=META)
    await wallets.capture(Capture(spent.reservation_id, 30), metadata=META)

    # Another replica, its clock a day ahead: by its own clock, today's 30 would be yesterday's.
    database_now = await pool.fetchval("SELECT now()")
    with freeze_time(database_now + timedelta(days=1), tick=True, real_asyncio=True):
        assert datetime.now().date() != database_now.date()
        with pytest.raises(errors.SpendingLimitExceeded):
            await Wallets(pool).reserve(Reserve(lenser, 25, "ahead"), metadata=META)


async def test_a_commands_time_is_its_database_transaction_time(pool):
    lenser = uuid4()
    await Wallets(pool).grant(Grant(lenser, 10, reason="grant", idempotency_key="g"), metadata=META)

    row = await pool.fetchrow(
        "SELECT data->>'at' AS at, recorded_at FROM events WHERE type = 'CreditsDeposited'"
    )
    assert datetime.fromisoformat(row["at"]) == row["recorded_at"]
