"""A fake BTC price oracle: CoinGecko's ``simple/price`` over HTTP on 127.0.0.1.

``GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd`` answers ``{"bitcoin": {"usd": <price>}}``,
the price written as the exact digits it was set to (``set_price("67187.12")``), as CoinGecko's JSON
number would be. It counts the requests (``requests``) and fails on demand: ``fail_with(status)``,
``answer_garbage()`` (a 200 whose body has no price), ``hang()`` (never answers until ``recover()``).
``url`` is the full oracle URL to give the service as ``BTC_PRICE_URL``.

Also runnable for development::

    python -m lf_testing.fakes.price_oracle --port 8796 --price 100000
"""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal

from aiohttp import web

from lf_testing.fakes.server import FakeServer

PATH = "/api/v3/simple/price"


class FakePriceOracle(FakeServer):
    def __init__(self, *, price: str | Decimal = "100000") -> None:
        super().__init__()
        self.price = Decimal(price)
        self.requests = 0
        self._failure: int | None = None
        self._garbage = False

    @property
    def oracle_url(self) -> str:
        return f"{self.url}{PATH}?ids=bitcoin&vs_currencies=usd"

    def set_price(self, price: str | Decimal) -> None:
        self.price = Decimal(price)

    def fail_with(self, status: int) -> None:
        self._failure = status

    def answer_garbage(self) -> None:
        self._garbage = True

    def recover(self) -> None:
        self._failure, self._garbage = None, False
        super().recover()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH, self._simple_price)
        return app

    async def _simple_price(self, request: web.Request) -> web.Response:
        self.requests += 1
        await self.hang_if_told()
        if self._failure is not None:
            return web.json_response({"status": {"error_code": self._failure}}, status=self._failure)
        if self._garbage:
            return web.json_response({"bitcoin": {}})
        if request.query.get("ids") != "bitcoin" or request.query.get("vs_currencies") != "usd":
            return web.json_response({}, status=200)  # CoinGecko answers unknown ids with {}
        # Written by hand so the number keeps its digits (json.dumps has no Decimal).
        return web.Response(text=f'{{"bitcoin":{{"usd":{self.price}}}}}', content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8796)
    parser.add_argument("--price", default="100000")
    arguments = parser.parse_args()
    fake = FakePriceOracle(price=arguments.price)
    asyncio.run(
        fake.serve_forever(
            arguments.port,
            "fake BTC price oracle: BTC_PRICE_URL={url}" + PATH + "?ids=bitcoin&vs_currencies=usd",
        )
    )


if __name__ == "__main__":
    main()
