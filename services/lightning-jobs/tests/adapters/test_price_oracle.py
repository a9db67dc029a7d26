"""The BTC price oracle client against a fake CoinGecko over HTTP: exact parsing, the 60 s cache,
the timeout and the flagged fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from lf_testing.fakes.price_oracle import FakePriceOracle
from lightning_jobs.adapters.price_oracle import BtcPrice, PriceOracle, parse_price

FALLBACK = Decimal(100_000)


class Clock:
    """Time that moves only when told: the cache is tested without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def oracle_server() -> AsyncIterator[FakePriceOracle]:
    fake = await FakePriceOracle(price="67187.12").start()
    yield fake
    await fake.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> Clock:
    return Clock()


def oracle_for(
    server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock, timeout: float = 5.0
) -> PriceOracle:
    return PriceOracle(
        http, url=server.oracle_url, fallback_usd=FALLBACK, timeout_seconds=timeout, clock=clock
    )


async def test_the_price_is_the_exact_digits_the_oracle_sent(
    oracle_server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock
) -> None:
    price = await oracle_for(oracle_server, http, clock).btc_usd()
    assert price == BtcPrice(Decimal("67187.12"), fallback=False)
    assert str(price.usd) == "67187.12"  # not 67187.11999999999...


async def test_an_answer_is_reused_for_sixty_seconds_then_asked_again(
    oracle_server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock
) -> None:
    oracle = oracle_for(oracle_server, http, clock)
    await oracle.btc_usd()
    oracle_server.set_price("70000")
    clock.now += 59.5
    assert (await oracle.btc_usd()).usd == Decimal("67187.12")
    assert oracle_server.requests == 1
    clock.now += 0.5
    assert (await oracle.btc_usd()).usd == Decimal("70000")
    assert oracle_server.requests == 2


async def test_callers_at_the_same_moment_share_one_request(
    oracle_server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock
) -> None:
    oracle = oracle_for(oracle_server, http, clock)
    prices = await asyncio.gather(*(oracle.btc_usd() for _ in range(20)))
    assert {price.usd for price in prices} == {Decimal("67187.12")}
    assert oracle_server.requests == 1


@pytest.mark.parametrize("failure", ["status", "garbage"])
async def test_an_oracle_that_fails_gives_the_fallback_flagged_and_is_asked_again_next_time(
    oracle_server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock, failure: str
) -> None:
    if failure == "status":
        oracle_server.fail_with(429)
    else:
        oracle_server.answer_garbage()
    oracle = oracle_for(oracle_server, http, clock)
    assert await oracle.btc_usd() == BtcPrice(FALLBACK, fallback=True)
    oracle_server.recover()
    assert await oracle.btc_usd() == BtcPrice(Decimal("67187.12"), fallback=False)
    assert oracle_server.requests == 2


async def test_an_oracle_that_hangs_gives_the_fallback_after_the_timeout(
    oracle_server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock
) -> None:
    oracle_server.hang()
    oracle = oracle_for(oracle_server, http, clock, timeout=0.2)
    assert await oracle.btc_usd() == BtcPrice(FALLBACK, fallback=True)


async def test_callers_during_an_outage_share_one_timeout(
    oracle_server: FakePriceOracle, http: aiohttp.ClientSession, clock: Clock
) -> None:
    oracle_server.hang()
    oracle = oracle_for(oracle_server, http, clock, timeout=0.2)
    prices = await asyncio.gather(*(oracle.btc_usd() for _ in range(5)))
    assert set(prices) == {BtcPrice(FALLBACK, fallback=True)}
    assert oracle_server.requests == 1


async def test_an_unreachable_oracle_gives_the_fallback(http: aiohttp.ClientSession, clock: Clock) -> None:
    fake = await FakePriceOracle().start()
    url = fake.oracle_url
    await fake.close()
    oracle = PriceOracle(http, url=url, fallback_usd=Decimal("95000.5"), clock=clock)
    assert await oracle.btc_usd() == BtcPrice(Decimal("95000.5"), fallback=True)


@pytest.mark.parametrize(
    ("body", "price"),
    [
        (b'{"bitcoin":{"usd":100000}}', Decimal(100000)),
        (b'{"bitcoin":{"usd":0.1}}', Decimal("0.1")),
        (b'{"bitcoin":{"usd":1e5}}', Decimal("1e5")),
        (b'{"bitcoin":{"usd":0}}', None),
        (b'{"bitcoin":{"usd":-3}}', None),
        (b'{"bitcoin":{"usd":"100000"}}', None),
        (b'{"bitcoin":{"usd":NaN}}', None),
        (b'{"bitcoin":{}}', None),
        (b"{}", None),
        (b"[]", None),
        (b"not json", None),
    ],
)
def test_only_a_positive_finite_number_is_a_price(body: bytes, price: Decimal | None) -> None:
    assert parse_price(body) == price


def test_a_fallback_that_is_not_a_positive_price_is_refused() -> None:
    with pytest.raises(ValueError, match="BTC_PRICE_USD_FALLBACK"):
        PriceOracle(None, fallback_usd=Decimal(0))  # type: ignore[arg-type]
