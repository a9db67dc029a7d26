"""Keeping a reservation alive (a stream that outlives its ttl) up to its hard deadline, and the
available balance a reserve answers with (what execution-proxy reports as ``balance_after``).

Over HTTP the times are the database's and the expiry loop runs every 0.2 s (``settings``), so
the waits here are in seconds. The rebuild check drives the use cases on an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lf_pg import DatabaseAccess
from lf_projections import rebuild
from lf_testing.waiting import eventually
from wallet_api.app import SCHEMA
from wallet_api.application.use_cases import Wallets
from wallet_api.domain import errors
from wallet_api.domain.commands import Capture, Extend, Grant, Reserve
from wallet_api.projections import ALL

META = {"actor": "test"}


async def data_of(response) -> dict:
    body = await response.json()
    assert response.status < 300, body
    return body["data"]


async def code_of(response) -> str:
    return (await response.json())["error"]["code"]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def status_of(wallet, rid: str) -> str:
    return await wallet.db.fetchval("SELECT status FROM reservations WHERE reservation_id = $1", rid)


async def test_an_extended_reservation_outlives_its_first_expiry_then_expires_at_the_new_one(wallet, lenser):
    await wallet.grant(lenser, 100)
    first = await data_of(await wallet.reserve(lenser, 30, ttlSeconds=1))
    extended = await data_of(await wallet.extend(first["reservationId"], 4))

    assert extended["status"] == "reserved" and extended["reservationId"] == first["reservationId"]
    assert at(extended["expiresAt"]) > at(first["expiresAt"]) + timedelta(seconds=2.5)
    assert extended["maxExpiresAt"] == first["maxExpiresAt"]
    row = await wallet.db.fetchrow(
        "SELECT expires_at, max_expires_at FROM reservations WHERE reservation_id = $1",
        first["reservationId"],
    )
    assert (row["expires_at"], row["max_expires_at"]) == (
        at(extended["expiresAt"]),
        at(extended["maxExpiresAt"]),
    )

    # Past the first expiry: the loop (every 0.2 s) has run several times and left it alone.
    await asyncio.sleep(1.8)
    assert await status_of(wallet, first["reservationId"]) == "reserved"
    assert (await wallet.balance(lenser))["reserved"] == 30

    async def expired() -> bool:
        return await status_of(wallet, first["reservationId"]) == "expired"

    await eventually(expired, timeout=10)
    closed_at = await wallet.db.fetchval(
        "SELECT closed_at FROM reservations WHERE reservation_id = $1", first["reservationId"]
    )
    assert closed_at >= at(extended["expiresAt"])
    assert (await wallet.balance(lenser))["reserved"] == 0


class TestAShortHardLifetime:
    @pytest.fixture
    async def settings(self, settings):
        return settings.model_copy(update={"reservation_max_lifetime_seconds": 2})

    async def test_an_extension_is_clamped_at_the_hard_lifetime_and_the_reservation_expires_there(
        self, wallet, lenser
    ):
        await wallet.grant(lenser, 100)
        first = await data_of(await wallet.reserve(lenser, 30, ttlSeconds=1))
        rid = first["reservationId"]
        created_at = await wallet.db.fetchval(
            "SELECT created_at FROM reservations WHERE reservation_id = $1", rid
        )
        assert at(first["maxExpiresAt"]) == created_at + timedelta(seconds=2)

        clamped = await data_of(await wallet.extend(rid, 3600))  # far past the cap: no error
        assert clamped["expiresAt"] == clamped["maxExpiresAt"] == first["maxExpiresAt"]
        again = await data_of(await wallet.extend(rid, 3600))  # idempotent: nothing more recorded
        assert again["expiresAt"] == clamped["expiresAt"]
        assert await wallet.db.fetchval("SELECT count(*) FROM events WHERE type = 'ReservationExtended'") == 1

        async def expired() -> bool:
            return await status_of(wallet, rid) == "expired"

        await eventually(expired, timeout=10)
        closed_at = await wallet.db.fetchval(
            "SELECT closed_at FROM reservations WHERE reservation_id = $1", rid
        )
        assert closed_at >= at(first["maxExpiresAt"])
        late = await wallet.extend(rid, 60)
        assert late.status == 409 and await code_of(late) == "wallet.reservation_closed"

    async def test_a_reserve_whose_ttl_passes_the_hard_lifetime_is_clamped_to_it(self, wallet, lenser):
        await wallet.grant(lenser, 100)
        held = await data_of(await wallet.reserve(lenser, 30, ttlSeconds=86_400))
        assert held["expiresAt"] == held["maxExpiresAt"]
        created_at = await wallet.db.fetchval(
            "SELECT created_at FROM reservations WHERE reservation_id = $1", held["reservationId"]
        )
        assert at(held["expiresAt"]) == created_at + timedelta(seconds=2)


async def test_the_default_hard_lifetime_is_an_hour(wallet, lenser):
    await wallet.grant(lenser, 100)
    held = await data_of(await wallet.reserve(lenser, 30, ttlSeconds=86_400))
    assert at(held["expiresAt"]) == at(held["maxExpiresAt"])
    created_at = await wallet.db.fetchval(
        "SELECT created_at FROM reservations WHERE reservation_id = $1", held["reservationId"]
    )
    assert at(held["maxExpiresAt"]) - created_at == timedelta(hours=1)


async def test_only_an_open_reservation_can_be_extended(wallet, lenser):
    await wallet.grant(lenser, 100)
    released = (await data_of(await wallet.reserve(lenser, 10)))["reservationId"]
    await wallet.release(released)
    captured = (await data_of(await wallet.reserve(lenser, 10)))["reservationId"]
    await wallet.capture(captured, 4)
    expired = (await data_of(await wallet.reserve(lenser, 10, ttlSeconds=1)))["reservationId"]

    async def swept() -> bool:
        return await status_of(wallet, expired) == "expired"

    await eventually(swept, timeout=10)
    for rid in (released, captured, expired):
        refused = await wallet.extend(rid, 60)
        assert refused.status == 409 and await code_of(refused) == "wallet.reservation_closed", rid
    unknown = await wallet.extend(str(uuid4()), 60)
    assert unknown.status == 404 and await code_of(unknown) == "wallet.reservation_not_found"
    assert (await wallet.balance(lenser))["reserved"] == 0


async def test_an_extension_asks_a_whole_number_of_seconds_within_bounds(wallet, lenser):
    await wallet.grant(lenser, 100)
    rid = (await data_of(await wallet.reserve(lenser, 10)))["reservationId"]
    for ttl in (0, -1, 86_401, "60", 1.5, None):
        refused = await wallet.extend(rid, ttl)
        assert refused.status == 400 and await code_of(refused) == "validation_error", ttl
    missing = await wallet.api.post(f"/internal/reservations/{rid}/extend", json={}, headers=wallet.internal)
    assert missing.status == 400


async def test_a_reserve_answers_the_available_balance_right_after_it_and_a_retry_the_current_one(
    wallet, lenser
):
    await wallet.grant(lenser, 100)
    first = await wallet.reserve(lenser, 30, reference_id="exec-a")
    assert first.status == 201 and (await data_of(first))["availableBalance"] == 70
    other = await data_of(await wallet.reserve(lenser, 20, reference_id="exec-b"))
    assert other["availableBalance"] == 50
    await wallet.capture(other["reservationId"], 10)  # 10 spent, 10 back: 60 available

    retry = await wallet.reserve(lenser, 30, reference_id="exec-a")
    assert retry.status == 200 and (await data_of(retry))["availableBalance"] == 60
    assert (await wallet.balance(lenser))["availableBalance"] == 60


async def test_the_rebuilt_reservations_equal_the_live_ones_after_extensions(settings, db):
    clock = [datetime(2026, 11, 22, 12, 0, tzinfo=UTC)]

    def now(_database_now: datetime) -> datetime:
        return clock[0]

    wallets = Wallets(db, clock=now, reservation_max_lifetime=timedelta(minutes=20))
    lenser = uuid4()
    await wallets.grant(Grant(lenser, 500, reason="grant", idempotency_key="g"), metadata=META)
    five = timedelta(minutes=5)
    held = {}
    for name in ("streamed", "capped", "captured", "left"):
        held[name], _ = await wallets.reserve(Reserve(lenser, 10, name, ttl=five), metadata=META)
    ids = {name: reservation.reservation_id for name, reservation in held.items()}

    clock[0] += timedelta(minutes=4)
    kept = await wallets.extend(Extend(ids["streamed"], five), metadata=META)
    assert kept.expires_at == clock[0] + five
    capped = await wallets.extend(Extend(ids["capped"], timedelta(hours=2)), metadata=META)
    assert capped.expires_at == capped.max_expires_at == held["capped"].expires_at + timedelta(minutes=15)
    await wallets.extend(Extend(ids["capped"], timedelta(hours=2)), metadata=META)  # repeated
    await wallets.extend(Extend(ids["captured"], five), metadata=META)
    await wallets.capture(Capture(ids["captured"], 7), metadata=META)

    clock[0] += timedelta(minutes=2)  # past the first expiry: only "left" is due
    assert await wallets.expire_due() == 1
    with pytest.raises(errors.ReservationClosed):
        await wallets.extend(Extend(ids["left"], five), metadata=META)
    clock[0] += timedelta(minutes=4)  # past the streamed one's new expiry
    assert await wallets.expire_due() == 1

    statuses = dict(await db.fetch("SELECT reference_id, status FROM reservations"))
    assert statuses == {
        "streamed": "expired",
        "capped": "reserved",
        "captured": "captured",
        "left": "expired",
    }
    live = [tuple(r) for r in await db.fetch("SELECT * FROM reservations ORDER BY reservations::text")]
    owner = await DatabaseAccess.of(settings, SCHEMA).connect_owner()
    try:
        await rebuild(owner, SCHEMA, ALL["reservations"])
    finally:
        await owner.close()
    assert [
        tuple(r) for r in await db.fetch("SELECT * FROM reservations ORDER BY reservations::text")
    ] == live
