"""Throughput and latency of reserve/capture pairs, closed and open loop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from common import logger, summary
from cpu import CLIENT_AND_PG, CpuMeter, CpuSplit, combine
from wallet_app import (
    DB,
    GRANT,
    REPOSITORY,
    Wallets,
    capture,
    grant,
    pool_of,
    release,
    reserve,
)

log = logger("bench")


@dataclass
class Latencies:
    samples_ns: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return summary([v / 1e6 for v in self.samples_ns])


async def gather_limited(n: int, coros: Iterable[Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def new_wallet(wallets: Wallets, amount: int = GRANT) -> UUID:
    lenser_id = uuid4()
    await grant(wallets, lenser_id, amount)
    return lenser_id


async def ten_event_wallet(wallets: Wallets) -> UUID:
    """Opened, granted, then four reserve/capture pairs: ten events, no snapshot yet."""
    lenser_id = await new_wallet(wallets)
    for _ in range(4):
        reservation, _ = await reserve(wallets, lenser_id, 1, f"warm-{uuid4().hex}")
        await capture(wallets, reservation.reservation_id, 1)
    return lenser_id


@dataclass
class ThroughputResult:
    label: str
    pairs: int
    seconds: float
    cpu: CpuSplit

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds


async def pairs_phase(
    wallets: Wallets, lenser_ids: list[UUID], clients: int, seconds: float, label: str, *, warmup: float
) -> ThroughputResult:
    """``clients`` workers, each looping reserve then capture on a random wallet of ``lenser_ids``."""

    async def run(duration: float) -> tuple[int, float, CpuSplit]:
        stop = time.perf_counter() + duration
        done = [0] * clients

        async def worker(k: int) -> None:
            rnd = random.Random(k)
            while time.perf_counter() < stop:
                lenser_id = lenser_ids[rnd.randrange(len(lenser_ids))]
                reservation, created = await reserve(wallets, lenser_id, 1, f"pair-{uuid4().hex}")
                assert created
                await capture(wallets, reservation.reservation_id, 1)
                done[k] += 1

        async with CpuMeter(DB["name"], groups=CLIENT_AND_PG) as meter:
            await asyncio.gather(*(worker(k) for k in range(clients)))
        return sum(done), meter.wall, meter.split

    await run(warmup)
    pairs, elapsed, cpu = await run(seconds)
    result = ThroughputResult(label, pairs, elapsed, cpu)
    log(f"wallet {label}: {result.pairs_per_s:.0f} pairs/s, {cpu.text()}")
    return result


@dataclass
class LatencyResult:
    label: str
    mode: str  # closed / open
    wallet_events_before: int
    reserves: int
    seconds: float
    offered_rate: float | None
    latency: dict[str, float]  # from the intended start (open loop) or the call (closed loop)
    service: dict[str, float]  # from the call
    cpu: CpuSplit

    @property
    def rate(self) -> float:
        return self.reserves / self.seconds


async def stream_version(pool: asyncpg.Pool, lenser_id: UUID) -> int:
    return await pool.fetchval(
        "SELECT version FROM streams WHERE stream_id = $1", REPOSITORY.stream_id(lenser_id)
    )


@dataclass
class LatencyRun:
    """What the slices of one wallet add up to."""

    latency: Latencies = field(default_factory=Latencies)
    service: Latencies = field(default_factory=Latencies)
    reserves: int = 0
    seconds: float = 0.0
    cpu: list[CpuSplit] = field(default_factory=list)


async def latency_slice(
    wallets: Wallets,
    lenser_id: UUID,
    clients: int,
    duration: float,
    rate: float | None,
    into: LatencyRun | None,
) -> None:
    """``clients`` tasks reserving on one wallet for ``duration`` seconds; each reserve (timed) is followed
    by a release (not timed), so the wallet's open reservations, which its snapshot carries, stay at most
    ``clients``.

    Closed loop (``rate=None``): each client goes again as soon as it is done. Open loop: reserve k is
    due at ``t0 + k/rate``, on client ``k % clients``; latency counts from when it was due, so a client
    that falls behind is charged for it (no coordinated omission).
    """
    run = into if into is not None else LatencyRun()
    t0 = time.perf_counter()
    stop = t0 + duration

    async def one() -> tuple[int, int]:
        start = time.perf_counter_ns()
        reservation, created = await reserve(wallets, lenser_id, 1, f"lat-{uuid4().hex}")
        end = time.perf_counter_ns()
        assert created
        await release(wallets, reservation.reservation_id)
        return start, end

    async def closed_client() -> None:
        while time.perf_counter() < stop:
            start, end = await one()
            run.reserves += 1
            run.latency.samples_ns.append(end - start)
            run.service.samples_ns.append(end - start)

    async def open_client(k: int) -> None:
        assert rate is not None
        n = k
        while (due := t0 + n / rate) < stop:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            start, end = await one()
            run.reserves += 1
            run.latency.samples_ns.append(end - int(due * 1e9))
            run.service.samples_ns.append(end - start)
            n += clients

    async with CpuMeter(DB["name"], groups=CLIENT_AND_PG) as meter:
        if rate is None:
            await asyncio.gather(*(closed_client() for _ in range(clients)))
        else:
            await asyncio.gather(*(open_client(k) for k in range(clients)))
    run.seconds += meter.wall
    run.cpu.append(meter.split)


async def latency_pair(
    wallets: Wallets,
    small_ids: list[UUID],
    big_id: UUID,
    big_label: str,
    clients: int,
    seconds: float,
    *,
    rate: float | None,
    slice_seconds: float,
) -> tuple[LatencyResult, LatencyResult]:
    """The ten-event wallet and the long one, measured in alternating slices (small, big, big, small,
    ...) so that whatever else the machine does in the meantime falls on both alike. Each slice of the
    small kind takes a fresh ten-event wallet from ``small_ids``."""
    mode = "closed" if rate is None else "open"
    big_before = await stream_version(pool_of(wallets), big_id)
    # Warm-up, not recorded: the pool's connections have every statement prepared by now, but the
    # long wallet's pages may not be in the cache.
    await latency_slice(wallets, big_id, clients, 1.0, rate, None)
    small, big = LatencyRun(), LatencyRun()
    rounds = max(1, round(seconds / slice_seconds))
    for i in range(rounds):
        order = [(small_ids.pop(), small), (big_id, big)]
        for lenser_id, into in order if i % 2 == 0 else reversed(order):
            await latency_slice(wallets, lenser_id, clients, seconds / rounds, rate, into)
    results = []
    for label, run, before in (("10 events", small, 10), (big_label, big, big_before)):
        result = LatencyResult(
            label,
            mode,
            before,
            run.reserves,
            run.seconds,
            rate,
            run.latency.summary(),
            run.service.summary(),
            combine(run.cpu),
        )
        log(
            f"latency {label} {mode}: {result.rate:.0f} reserves/s, p50 {result.latency['p50']:.1f} ms,"
            f" p99 {result.latency['p99']:.1f} ms (service p50 {result.service['p50']:.1f} p99"
            f" {result.service['p99']:.1f}), {result.cpu.text()}"
        )
        results.append(result)
    return results[0], results[1]
