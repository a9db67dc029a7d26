"""Each wallet command is four round trips (BEGIN, its read, its write, COMMIT), whatever its
inline read models: the statements an asyncpg query logger sees on the command's one connection."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from lf_pg import create_pool
from wallet_api.app import SCHEMA
from wallet_api.application.use_cases import Wallets
from wallet_api.domain.commands import Capture, Grant, Release, Reserve

META = {"actor": "round-trips-test"}


@pytest.fixture
async def logged(settings):
    """The statements of a ``Wallets`` on a pool of one connection, as they are sent."""
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=1)
    seen: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: seen.append(record.query))
    yield Wallets(pool), seen
    await pool.close()


async def statements(seen: list[str], command) -> list[str]:
    seen.clear()
    result = await command
    await asyncio.sleep(0.01)  # the logger is told just after each statement
    return result, list(seen)


async def test_reserve_capture_and_release_are_four_round_trips_each(logged):
    wallets, seen = logged
    lenser = uuid4()
    await wallets.grant(Grant(lenser, 100, reason="grant", idempotency_key="g"), metadata=META)

    (reservation, _), reserve = await statements(
        seen, wallets.reserve(Reserve(lenser, 5, "r-1"), metadata=META)
    )
    _, capture = await statements(
        seen, wallets.capture(Capture(reservation.reservation_id, 3), metadata=META)
    )
    (second, _), _ = await statements(seen, wallets.reserve(Reserve(lenser, 5, "r-2"), metadata=META))
    _, release = await statements(seen, wallets.release(Release(second.reservation_id), metadata=META))

    for sent in (reserve, capture, release):
        assert len(sent) == 4, sent
        assert sent[0].startswith("BEGIN") and sent[-1].startswith("COMMIT")
        assert "command_load" in sent[1]


async def test_a_capture_on_a_replica_that_never_saw_the_reservation_is_four_round_trips_too(
    logged, settings
):
    wallets, seen = logged
    lenser = uuid4()
    await wallets.grant(Grant(lenser, 100, reason="grant", idempotency_key="g"), metadata=META)
    reservation, _ = await wallets.reserve(Reserve(lenser, 5, "r-1"), metadata=META)
    other = Wallets(wallets.commands.pool)  # knows no reservation's wallet: finds it in its read
    captured, sent = await statements(
        seen, other.capture(Capture(reservation.reservation_id, 5), metadata=META)
    )
    assert captured.status == "captured" and captured.lenser_id == lenser
    assert len(sent) == 4, sent
