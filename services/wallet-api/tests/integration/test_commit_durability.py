"""Which of wallet-api's writes wait for the WAL flush: every command does (it records money and
events); a rate-limit admission does not (lf_pg.WITHOUT_FLUSH)."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from lf_testing.durability import CommitSettings
from wallet_api.app import SCHEMA

EVENTS = f"{SCHEMA}.events"
RATE_LIMITS = f"{SCHEMA}.rate_limits"


@pytest.fixture
async def commits(settings) -> AsyncIterator[CommitSettings]:
    admin = await asyncpg.connect(settings.database_url)  # the owner: installs the triggers
    recorded = await CommitSettings.install(admin)
    await recorded.watch(EVENTS)
    await recorded.watch(RATE_LIMITS)
    yield recorded
    await admin.close()


async def test_commands_wait_for_the_flush_and_rate_limit_admissions_do_not(wallet, lenser, commits) -> None:
    assert (await wallet.grant(lenser, 100)).status == 201
    reserved = await wallet.reserve(lenser, 10)
    assert reserved.status == 201
    reservation_id = (await reserved.json())["data"]["reservationId"]
    assert (await wallet.capture(reservation_id, 10)).status == 200

    await wallet.balance(lenser)
    await wallet.balance(lenser)

    assert await commits.of(EVENTS) == ["on", "on", "on"]  # grant, reserve, capture
    assert await commits.of(RATE_LIMITS) == ["off", "off"]
