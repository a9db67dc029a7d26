"""POST /execute/stream on the built-in ``local`` provider: the frames, a reservation kept alive past
its time to live (and charged late past its hard lifetime), a client leaving before the first
token, a server stopping mid-stream. Served as in production: a handler is not cancelled when its
client leaves (``ServedAsInProduction``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from execution_proxy.app import create_app
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.domain import tokens
from execution_proxy.domain.pricing import Metered
from execution_proxy.settings import ExecutionSettings
from lf_testing import sse
from lf_testing.servers import ServedAsInProduction
from lf_testing.waiting import eventually

FUNDS = 10_000
TTL = 2
SHUTDOWN_SECONDS = 1.0
PROMPT = "Hello there"  # what driver.execute sends
LONG = pytest.mark.parametrize(
    "settings", [{"reservation_ttl_seconds": TTL, "local_token_delay_ms": 200}], indirect=True
)
"""A reservation of 2 s and a stream of at least 24 tokens 200 ms apart: longer than two TTLs."""


@pytest.fixture
async def api(settings: ExecutionSettings, catalogue: CatalogueAdmin) -> AsyncIterator[TestClient]:
    app = create_app(settings)
    async with TestClient(ServedAsInProduction(app, shutdown_timeout=SHUTDOWN_SECONDS)) as client:
        yield client


async def reservation(wallet_db: asyncpg.Pool, lenser: UUID) -> dict[str, Any]:
    row = await wallet_db.fetchrow(
        "SELECT *, clock_timestamp() AS now FROM reservations WHERE lenser_id = $1", lenser
    )
    assert row is not None
    return dict(row)


async def wallet_events(wallet_db: asyncpg.Pool, reservation_id: UUID) -> list[str]:
    return await wallet_db.fetchval(
        "SELECT array_agg(type ORDER BY position) FROM events WHERE data->>'reservation_id' = $1",
        str(reservation_id),
    )


async def captured(wallet_db: asyncpg.Pool, lenser: UUID) -> dict[str, Any]:
    async def settled() -> bool:
        return (await reservation(wallet_db, lenser))["status"] == "captured"

    await eventually(settled, timeout=20)
    return await reservation(wallet_db, lenser)


async def execution_of(db: asyncpg.Pool, lenser: UUID) -> dict[str, Any]:
    async def recorded() -> bool:
        return await db.fetchval("SELECT count(*) FROM executions WHERE lenser_id = $1", lenser) == 1

    await eventually(recorded, timeout=20)
    return dict(await db.fetchrow("SELECT * FROM executions WHERE lenser_id = $1", lenser))


async def test_a_stream_is_start_then_tokens_then_end_with_the_charge_and_the_balance_after_it(
    driver, lenser, wallet_db
):
    await driver.fund(lenser, FUNDS)

    response = await driver.execute(lenser, "/execute/stream", max_tokens=12)
    frames = await sse.read_all(response)

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Request-Id"]
    assert [frame.name for frame in frames] == ["start", *["token"] * 12, "end"]
    end = frames[-1].data
    assert set(end) == {"usage", "credits_charged", "balance_after", "execution_id", "cancelled", "cut_short"}
    assert (end["cancelled"], end["cut_short"]) == (False, False)
    assert frames[0].data == {"run_id": end["execution_id"]}
    assert end["usage"] == {"input_tokens": tokens.count_prompt([PROMPT]), "output_tokens": 12}
    assert end["credits_charged"] >= 1
    settled = await driver.settled(lenser)
    assert end["balance_after"] == settled["balance"] - settled["reserved"] == FUNDS - end["credits_charged"]


@LONG
async def test_a_stream_that_outlives_its_reservations_ttl_keeps_it_alive_and_is_captured_in_time(
    driver, lenser, wallet_db
):
    await driver.fund(lenser, FUNDS)
    began = time.monotonic()
    response = await driver.execute(lenser, "/execute/stream", max_tokens=30)

    first_expiry, seen_alive_past_it = None, False
    async for frame in sse.events(response):
        if frame.name == "start":
            first_expiry = (await reservation(wallet_db, lenser))["expires_at"]
        elif frame.name == "token" and not seen_alive_past_it:
            held = await reservation(wallet_db, lenser)
            if held["now"] > first_expiry:  # the first TTL is over: still held, by an extension
                assert held["status"] == "reserved"
                assert held["expires_at"] > first_expiry
                seen_alive_past_it = True
        elif frame.name == "end":
            end = frame.data

    assert seen_alive_past_it
    assert time.monotonic() - began > 2 * TTL
    held = await captured(wallet_db, lenser)
    assert held["captured"] == end["credits_charged"]
    kinds = await wallet_events(wallet_db, held["reservation_id"])
    assert "ReservationExtended" in kinds and kinds[-1] == "ReservationCaptured"  # not charged late
    assert (await driver.balance(lenser))["balance"] == FUNDS - end["credits_charged"]


@LONG
@pytest.mark.parametrize("wallet", [{"reservation_max_lifetime_seconds": 3}], indirect=True)
async def test_past_its_hard_lifetime_a_reservation_expires_and_the_stream_is_still_charged_for_it(
    driver, lenser, wallet_db
):
    await driver.fund(lenser, FUNDS)
    response = await driver.execute(lenser, "/execute/stream", max_tokens=30)

    statuses = []
    async for frame in sse.events(response):
        if frame.name == "token":
            statuses.append((await reservation(wallet_db, lenser))["status"])
        elif frame.name == "end":
            end = frame.data

    assert "expired" in statuses  # while the stream still ran: extensions stop at the deadline
    held = await captured(wallet_db, lenser)
    assert (held["captured"], held["uncollected"]) == (end["credits_charged"], 0)
    kinds = await wallet_events(wallet_db, held["reservation_id"])
    assert kinds[-2:] == ["ReservationReleased", "ExpiredReservationCharged"]
    balance = await driver.balance(lenser)
    assert balance["balance"] == FUNDS - end["credits_charged"] == end["balance_after"]
    assert await driver.trial_balance() == 0


@pytest.mark.parametrize("settings", [{"local_token_delay_ms": 2000}], indirect=True)
async def test_a_client_that_leaves_before_the_first_token_is_charged_the_input_only(
    driver, lenser, db, catalogue, settings
):
    await driver.fund(lenser, FUNDS)
    response = await driver.execute(lenser, "/execute/stream", max_tokens=30)
    async for frame in sse.events(response):
        assert frame.name == "start"
        break
    response.close()

    execution = await execution_of(db, lenser)
    assert execution["status"] == "succeeded"
    assert execution["client_disconnected"] is True
    assert (execution["input_tokens"], execution["output_tokens"]) == (tokens.count_prompt([PROMPT]), 0)
    quote = (await catalogue.current()).quote("local-small", datetime.now(UTC), settings.credits_per_usd)
    assert execution["credits_charged"] == quote.cost(Metered(input_tokens=execution["input_tokens"]))[1]
    assert (await driver.settled(lenser))["balance"] == FUNDS - execution["credits_charged"]


@pytest.mark.parametrize("settings", [{"local_token_delay_ms": 200}], indirect=True)
async def test_a_server_stopping_mid_stream_still_records_what_was_produced(
    driver, api, lenser, db, catalogue, settings
):
    await driver.fund(lenser, FUNDS)
    response = await driver.execute(lenser, "/execute/stream", max_tokens=30)
    received = 0
    async for frame in sse.events(response):
        received += frame.name == "token"
        if received == 2:
            break

    await api.server.close()  # waits SHUTDOWN_SECONDS for the handler, then cancels it

    execution = await execution_of(db, lenser)
    assert execution["status"] == "succeeded"
    assert 2 <= execution["output_tokens"] < 24  # what was produced, not the whole answer
    used = Metered(input_tokens=execution["input_tokens"], output_tokens=execution["output_tokens"])
    quote = (await catalogue.current()).quote("local-small", datetime.now(UTC), settings.credits_per_usd)
    assert execution["credits_charged"] == quote.cost(used)[1]
    response.close()
