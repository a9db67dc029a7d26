"""The client: signed deliveries and /health requests, in closed or open loop, and what each phase saw."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from common import logger, summary
from cpu import CpuMeter, CpuSplit

from billing_webhook.application.catalogue import DEV_PACKS
from lf_testing.fakes.lemonsqueezy import encode, order, sign

log = logger("billing-bench")
SECRET = "bench-webhook-secret"
VARIANT = "dev-100"
CREDITS = DEV_PACKS[VARIANT].credits_granted
FIRST_ORDER_ID = 10_000_000


class DeliveryMaker:
    """Distinct signed ``order_created`` deliveries, cycling over the checkout sessions: order ids
    count up from FIRST_ORDER_ID, so every body (and so every delivery id) is new."""

    def __init__(self, sessions: list[str]) -> None:
        self.sessions = sessions
        self.next_id = FIRST_ORDER_ID
        self.ready: list[tuple[str, bytes, dict[str, str]]] = []

    def make(self) -> tuple[str, bytes, dict[str, str]]:
        order_id = self.next_id
        self.next_id += 1
        session = self.sessions[(order_id - FIRST_ORDER_ID) % len(self.sessions)]
        body = encode(order(order_id, session_id=session, variant_id=VARIANT, total=100))
        headers = {
            "Content-Type": "application/json",
            "X-Signature": sign(body, SECRET),
            "X-Event-Name": "order_created",
        }
        return str(order_id), body, headers

    def prepare(self, n: int) -> None:
        """Build (and sign) ``n`` ahead, outside the measured phases, so the client's CPU goes to
        sending; ``take`` falls back to building on the spot if they run out."""
        self.ready.extend(self.make() for _ in range(n))
        self.ready.reverse()

    def take(self) -> tuple[str, bytes, dict[str, str]]:
        return self.ready.pop() if self.ready else self.make()


@dataclass
class Phase:
    label: str
    kind: str  # "health" | "deliveries"
    loop: str  # "closed" | "open"
    via: str  # "direct" | "nginx"
    clients: int
    offered: float | None
    seconds: float = 0.0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)  # open loop: from when it was due
    service_ms: list[float] = field(default_factory=list)  # from the request's start
    sent: list[tuple[str, float]] = field(
        default_factory=list
    )  # accepted deliveries: order id, send time (epoch)
    started_at: float = 0.0  # epoch
    ended_at: float = 0.0
    cpu: CpuSplit | None = None
    # Filled in after the drain.
    backlog: dict[str, Any] = field(default_factory=dict)
    drain_seconds: float | None = None
    drain: dict[str, Any] = field(default_factory=dict)
    credit: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def lat(self) -> dict[str, float]:
        return summary(self.latency_ms)

    @property
    def srv(self) -> dict[str, float]:
        return summary(self.service_ms)


async def _one(
    http: aiohttp.ClientSession,
    phase: Phase,
    url: str,
    item: tuple[str, bytes, dict[str, str]] | None,
    due_ns: int | None,
) -> None:
    sent_at = time.time()
    start = time.perf_counter_ns()
    try:
        if item is None:
            async with http.get(url) as response:
                await response.read()
                status = response.status
        else:
            async with http.post(url, data=item[1], headers=item[2]) as response:
                await response.read()
                status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        phase.errors[type(error).__name__] += 1
        return
    end = time.perf_counter_ns()
    if status != 200:
        phase.errors[str(status)] += 1
        return
    phase.ok += 1
    phase.service_ms.append((end - start) / 1e6)
    phase.latency_ms.append((end - (due_ns if due_ns is not None else start)) / 1e6)
    if item is not None:
        # Open loop: the delivery "happened" when it was due, whether or not the client was on time.
        if due_ns is not None:
            sent_at -= (start - due_ns) / 1e9
        phase.sent.append((item[0], sent_at))


async def run_phase(
    http: aiohttp.ClientSession,
    phase: Phase,
    url: str,
    seconds: float,
    meter: CpuMeter,
    maker: DeliveryMaker | None,
) -> Phase:
    """Closed loop: ``phase.clients`` workers, each posting the next request as soon as it has its
    answer. Open loop: request k is due at t0 + k / rate, each in a task of its own, whatever the
    earlier ones are doing; latency counts from when it was due (no coordinated omission), so a
    client or a connection pool that falls behind is charged for it."""

    def next_item() -> tuple[str, bytes, dict[str, str]] | None:
        return maker.take() if maker is not None else None

    phase.started_at = time.time()
    async with meter:
        t0 = time.perf_counter()
        if phase.loop == "closed":
            stop = t0 + seconds

            async def worker() -> None:
                while time.perf_counter() < stop:
                    await _one(http, phase, url, next_item(), None)

            await asyncio.gather(*(worker() for _ in range(phase.clients)))
        else:
            assert phase.offered
            rate, tasks = phase.offered, set()
            t0_ns = time.perf_counter_ns()
            for k in range(int(rate * seconds)):
                due_ns = t0_ns + int(k * 1e9 / rate)
                delay = (due_ns - time.perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(_one(http, phase, url, next_item(), due_ns))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
    phase.seconds = meter.wall
    phase.ended_at = time.time()
    phase.cpu = meter.split
    lat = phase.lat
    log(
        f"{phase.label}: {phase.rate:,.0f}/s, p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} ms,"
        f" errors {dict(phase.errors) or 0}, {phase.cpu.text()}"
    )
    return phase
