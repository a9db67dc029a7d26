"""The BTC/USD price, from a CoinGecko-compatible oracle (seed 002: "btc-oracle.ts").

``GET {BTC_PRICE_URL}`` (default CoinGecko's ``/api/v3/simple/price?ids=bitcoin&vs_currencies=usd``)
answers ``{"bitcoin": {"usd": 67187.12}}``. The number is read straight into a Decimal from the JSON
text, never through a float, so the price we lock is the digits the oracle sent.

As the seed does: an answer is reused for ``BTC_PRICE_CACHE_SECONDS`` (60), a call gives up after
``BTC_PRICE_TIMEOUT_SECONDS`` (5), and when there is no usable answer the price is
``BTC_PRICE_USD_FALLBACK`` (100,000). What we add: the price says whether it is the fallback
(``BtcPrice.fallback``), so a job priced with it can say so; a failure is not cached (the next call
asks again), but callers at the same moment share one request and its outcome, so an outage costs
each of them at most one timeout, never a queue of them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import structlog

DEFAULT_BTC_PRICE_URL = "https://api.coingecko.com/api/v3/simple/price?ids=bitcoin&vs_currencies=usd"
DEFAULT_FALLBACK_USD = Decimal(100_000)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BtcPrice:
    usd: Decimal
    fallback: bool
    """True when the oracle gave no usable answer and ``BTC_PRICE_USD_FALLBACK`` was used."""


class PriceOracle:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        url: str = DEFAULT_BTC_PRICE_URL,
        fallback_usd: Decimal = DEFAULT_FALLBACK_USD,
        cache_seconds: float = 60.0,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not fallback_usd.is_finite() or fallback_usd <= 0:
            raise ValueError("BTC_PRICE_USD_FALLBACK must be a positive number")
        self._http, self._url, self._fallback = http, url, fallback_usd
        self._cache_seconds = cache_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._cached: tuple[Decimal, float] | None = None
        self._lock = asyncio.Lock()
        self._fetches_done = 0

    async def btc_usd(self) -> BtcPrice:
        """The price of a bitcoin in USD: cached, fetched, or the fallback (flagged)."""
        fresh = self._fresh()
        if fresh is not None:
            return BtcPrice(fresh, fallback=False)
        done_before = self._fetches_done
        async with self._lock:
            # A fetch that ended while this caller waited is shared: its price, or its failure
            # (asking again at once would only add a timeout per waiting caller).
            fresh = self._fresh()
            if fresh is not None:
                return BtcPrice(fresh, fallback=False)
            if self._fetches_done != done_before:
                return BtcPrice(self._fallback, fallback=True)
            try:
                price = await self._fetch()
            finally:
                self._fetches_done += 1
            if price is None:
                return BtcPrice(self._fallback, fallback=True)
            self._cached = (price, self._clock())
            return BtcPrice(price, fallback=False)

    def _fresh(self) -> Decimal | None:
        if self._cached is None:
            return None
        price, fetched_at = self._cached
        return price if self._clock() - fetched_at < self._cache_seconds else None

    async def _fetch(self) -> Decimal | None:
        try:
            async with self._http.get(
                self._url, timeout=self._timeout, headers={"Accept": "application/json"}
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("btc_price.unreachable", error=type(error).__name__, fallback=str(self._fallback))
            return None
        if status != 200:
            log.warning("btc_price.refused", status=status, fallback=str(self._fallback))
            return None
        price = parse_price(raw)
        if price is None:
            log.warning("btc_price.malformed", fallback=str(self._fallback))
        return price


def parse_price(raw: bytes) -> Decimal | None:
    """``bitcoin.usd`` of a CoinGecko ``simple/price`` answer as an exact Decimal, or None when the
    answer has no positive, finite price."""
    try:
        answer: Any = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
        price = answer["bitcoin"]["usd"]
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return None
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        return None
    return price
