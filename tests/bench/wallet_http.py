"""Internal HTTP reserve through wallet-api, p50 added over ``GET /health`` on the same server.

A real ``python -m wallet_api serve`` on a scratch database and RabbitMQ vhost of its own (so its
followers do not replay the wallet benchmark's long log meanwhile). One client, one kept-alive
connection, requests one after the other, so the figure is service time with no queueing: each
round times a ``GET /health`` (the baseline: routing, middleware, a ``SELECT 1`` and the broker
check on the same server) and a ``POST /internal/reservations`` (a fresh referenceId), then releases
the reservation untimed, so the wallet's open reservations stay bounded. Health and reserve alternate,
so the rest of the machine's load falls on both alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import uuid4

import aiohttp
from common import logger, summary
from wallet_app import release, reserve
from wallet_load import new_wallet

from lf_testing import infra
from lf_testing.processes import ServiceProcess

log = logger("bench")
PLATFORM_KEY = "bench-platform-key"
HEADERS = {"X-Platform-Api-Key": PLATFORM_KEY}


@dataclass
class HttpReserve:
    rounds: int
    health: dict[str, float]
    reserve: dict[str, float]

    @property
    def added_p50(self) -> float:
        return self.reserve["p50"] - self.health["p50"]


async def in_process_reserve(wallets: object, seconds: float) -> dict[str, float]:
    """The same reserve called in this process, one at a time on a fresh wallet (each released,
    untimed): the command's own cost, which the HTTP figure includes."""
    lenser = await new_wallet(wallets)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter_ns()
        res, _ = await reserve(wallets, lenser, 1, uuid4().hex)
        times.append((time.perf_counter_ns() - t) / 1e6)
        await release(wallets, res.reservation_id)
    return summary(times)


async def http_reserve_phase(seconds: float, warmup: float) -> HttpReserve:
    database_url = await infra.create_database()
    amqp_url = await infra.create_vhost()
    wallet = ServiceProcess(
        "wallet_api",
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "PLATFORM_API_KEY": PLATFORM_KEY,
            "ENV_MODE": "development",
            "LOG_LEVEL": "WARNING",
        },
    )
    try:
        await wallet.start()
        lenser = str(uuid4())
        async with aiohttp.ClientSession(base_url=wallet.url, headers=HEADERS) as http:
            async with http.post(
                f"/internal/wallets/{lenser}/grants",
                json={"amount": 10**12, "reason": "benchmark", "idempotencyKey": lenser},
            ) as response:
                if response.status != 201:
                    raise RuntimeError(f"grant: {response.status} {await response.text()}")

            async def one_round(health_ms: list[float], reserve_ms: list[float]) -> None:
                t = time.perf_counter_ns()
                async with http.get("/health") as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"GET /health: {response.status} {await response.text()}")
                health_ms.append((time.perf_counter_ns() - t) / 1e6)
                body = {"lenserId": lenser, "amount": 1, "referenceId": uuid4().hex}
                t = time.perf_counter_ns()
                async with http.post("/internal/reservations", json=body) as response:
                    answer = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"reserve: {response.status} {answer}")
                reserve_ms.append((time.perf_counter_ns() - t) / 1e6)
                async with http.post(f"/internal/reservations/{answer['data']['reservationId']}/release"):
                    pass

            for phase_seconds in (warmup, seconds):  # the measured phase last: its lists are kept
                health_ms: list[float] = []
                reserve_ms: list[float] = []
                end = time.perf_counter() + phase_seconds
                while time.perf_counter() < end:
                    await one_round(health_ms, reserve_ms)
        result = HttpReserve(len(reserve_ms), summary(health_ms), summary(reserve_ms))
        log(
            f"http reserve: p50 {result.reserve['p50']:.2f} ms, health p50 {result.health['p50']:.2f} ms,"
            f" added {result.added_p50:.2f} ms over {result.rounds} rounds"
        )
        return result
    finally:
        wallet.stop()
        await infra.drop_database(database_url)
        await infra.delete_vhost(amqp_url)
