# ruff: noqa: E501, RUF001, ASYNC240 - a report writer: long prose lines, multiplication signs, small /proc reads
"""billing-webhook benchmark (``make bench``): signed deliveries to wallet credits, beside /health.

Run by ``tests/bench/run.sh`` after the wallet benchmark: it writes the "Billing: deliveries to
credits" section of docs/benchmarks.md (between the markers ``BEGIN``/``END`` below), which run.sh
appends to the wallet report. On its own it replaces that section in an existing file:

    uv run python tests/bench/billing_bench.py --splice-into docs/benchmarks.md
    BENCH_ONLY=billing make bench     # the same through run.sh

The system runs as in production, one process each: wallet-api and billing-webhook (``python -m
<package> serve``, each with its DB_ROLE, LOG_LEVEL=WARNING) on a scratch database and a fresh
RabbitMQ vhost (lf_testing.infra), both schemas migrated first; a fake LemonSqueezy (in this process)
serves the checkouts. This process is the client: one aiohttp session, one connection pool.

Nothing here is a test: a missed target is reported, not failed.

Environment (all optional):
    BENCH_SECONDS                length of each measured phase (default 10)
    BENCH_BILLING_CLIENTS        connections of the closed-loop phases (32)
    BENCH_BILLING_RATE           offered deliveries/s, and /health requests/s, of the open-loop phases (500)
    BENCH_BILLING_LENSERS        checkout sessions, one per lenser, the deliveries cycle over (1000)
    BENCH_BILLING_DRAIN_SECONDS  how long to wait after a phase for the wallet to credit what was
                                 accepted (default 3 x BENCH_SECONDS, at least 15)
    BENCH_BILLING_GATEWAY        1 (default): one more closed-loop phase, through nginx (infra/gateway)
    BENCH_PROFILE                1: sample billing-webhook with py-spy in one more phase (default: on
                                 when py-spy is found: BENCH_PYSPY, the PATH or the venv; 0: off).
                                 py-spy is not a project dependency: `uv pip install py-spy`
    BENCH_PROFILE_DIR            keep py-spy's raw (collapsed) stacks there
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import inspect
import json
import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import UUID, uuid4

import aio_pika
import aiohttp
import asyncpg
import structlog
from common import (
    AUX_PROCESSES,
    CLK_TCK,
    _machine_busy,
    check_local,
    env_float,
    env_int,
    met,
    percentile,
    ratio,
)

from billing_webhook.app import MIGRATIONS as BILLING_MIGRATIONS
from billing_webhook.app import SCHEMA as BILLING_SCHEMA
from billing_webhook.application.catalogue import DEV_PACKS
from lf_pg import migrate
from lf_testing import infra
from lf_testing.fakes.lemonsqueezy import FakeLemonSqueezy, encode, order, sign
from lf_testing.processes import Gateway, ServiceProcess
from lf_testing.waiting import eventually
from wallet_api.app import MIGRATIONS as WALLET_MIGRATIONS
from wallet_api.app import SCHEMA as WALLET_SCHEMA

BEGIN = "<!-- billing-bench:begin (tests/bench/billing_bench.py) -->"
END = "<!-- billing-bench:end -->"
SECRET = "bench-webhook-secret"
PLATFORM_KEY = "bench-platform-key"
VARIANT = "dev-100"
CREDITS = DEV_PACKS[VARIANT].credits_granted
WALLET_QUEUE = "wallet-api.events"
FIRST_ORDER_ID = 10_000_000


def log(message: str) -> None:
    print(f"[billing-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- CPU accounting -------------------------------------------------------------------------------

GROUPS = ("client", "billing", "wallet", "nginx", "pg", "rabbitmq")


@dataclass(frozen=True)
class CpuSplit:
    """Cores used per group over a phase (of ``cores``), and by the whole machine."""

    wall: float
    cores: int
    parts: dict[str, float]
    machine: float | None
    loop: tuple[float, float] | None = (
        None  # billing-webhook's main thread: (on a CPU, runnable but waiting for one)
    )

    def get(self, name: str) -> float:
        return self.parts.get(name, 0.0)

    def text(self) -> str:
        # nginx only where it ran (its master process is watched throughout, idle outside its phase).
        shown = [
            f"{name} {self.parts[name]:.2f}"
            for name in GROUPS
            if name in self.parts and (name != "nginx" or self.parts[name] >= 0.005)
        ]
        if self.machine is not None:
            other = self.machine - sum(self.parts.values())
            shown.append(f"other {max(other, 0):.2f}")
            shown.append(f"idle {max(self.cores - self.machine, 0):.2f}")
        return " / ".join(shown)


class CpuMeter:
    """Where the CPU went during a phase: this process (the client), billing-webhook, wallet-api,
    nginx (when it runs), PostgreSQL (the benchmark database's backends and the server's shared
    processes: another database's backends count as "other"), RabbitMQ (the whole broker, shared by
    every vhost), everything else, idle. Per process from /proc, sampled every 0.2 s so that
    processes which exit during the phase are counted up to their last sample."""

    def __init__(self, dbname: str, pids: dict[str, set[int]], loop_pid: int | None = None) -> None:
        self.dbname, self.pids, self.loop_pid = dbname, pids, loop_pid
        self.start: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        fixed = {pid: group for group, pids in self.pids.items() for pid in pids}
        nginx_parents = self.pids.get("nginx", set())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            head, _, rest = raw.rpartition(")")
            comm = head.partition("(")[2]
            fields = rest.split()
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            ppid = int(fields[1])
            group = fixed.get(pid)
            if group is None and comm == "nginx" and ppid in nginx_parents:
                group = "nginx"
            elif group is None and comm == "beam.smp":
                group = "rabbitmq"
            elif group is None and comm == "postgres":
                try:
                    title = (
                        Path(f"/proc/{entry}/cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode(errors="replace")
                    )
                except OSError:
                    continue
                if f" {self.dbname} " in title or any(n in title for n in AUX_PROCESSES) or "-D " in title:
                    group = "pg"
            if group is not None:
                found[pid] = (group, cpu)
        return found

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.last.update(self._sample())

    def _schedstat(self) -> tuple[int, int] | None:
        """(ns on a CPU, ns runnable but waiting for a CPU) of the event loop's thread: the main thread of
        ``loop_pid``. Their sum over a phase is how busy the loop was, whether or not it got a core."""
        if self.loop_pid is None:
            return None
        try:
            values = Path(f"/proc/{self.loop_pid}/task/{self.loop_pid}/schedstat").read_text().split()
        except OSError:
            return None
        return int(values[0]), int(values[1])

    @staticmethod
    def _self_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def __aenter__(self) -> CpuMeter:
        self.start = self._sample()
        self.last = dict(self.start)
        self._task = asyncio.create_task(self._poll())
        self._machine = _machine_busy()
        self._sched = self._schedstat()
        self._client = self._self_cpu()
        self._wall = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        client = self._self_cpu() - self._client
        end = _machine_busy()
        sched = self._schedstat()
        loop = None
        if sched is not None and self._sched is not None:
            loop = (
                (sched[0] - self._sched[0]) / 1e9 / self.wall,
                (sched[1] - self._sched[1]) / 1e9 / self.wall,
            )
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.last.update(self._sample())
        parts: dict[str, float] = defaultdict(float)
        for pid, (group, cpu) in self.last.items():
            parts[group] += cpu - self.start.get(pid, (group, 0.0))[1]
        parts = {g: v / self.wall for g, v in parts.items() if g != "client"}
        parts["client"] = client / self.wall
        machine = None
        if self._machine and end and end[1] > self._machine[1]:
            machine = (end[0] - self._machine[0]) / (end[1] - self._machine[1]) * (os.cpu_count() or 1)
        self.split = CpuSplit(self.wall, os.cpu_count() or 1, parts, machine, loop)


# --- statistics -----------------------------------------------------------------------------------


def summary(values_ms: list[float]) -> dict[str, float]:
    values = sorted(values_ms)
    return {
        "n": len(values),
        "mean": sum(values) / len(values) if values else float("nan"),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": values[-1] if values else float("nan"),
    }


# --- deliveries -----------------------------------------------------------------------------------


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


# --- the system under test --------------------------------------------------------------------------


async def queue_declared(amqp_url: str, name: str) -> None:
    async def declared() -> bool:
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel()
            await channel.declare_queue(name, passive=True)
            return True
        except aio_pika.exceptions.ChannelClosed:
            return False
        finally:
            await connection.close()

    await eventually(declared, timeout=30)


async def queue_depth(amqp_url: str, name: str) -> int | None:
    """Messages in the queue (ready + unacknowledged), from the management API; None without it."""
    vhost = urlsplit(amqp_url).path.lstrip("/")
    parts = urlsplit(infra.management_url())
    auth = {"Authorization": aiohttp.encode_basic_auth(parts.username or "guest", parts.password or "guest")}
    url = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"
    try:
        async with aiohttp.ClientSession(headers=auth) as http, http.get(url) as response:
            if response.status != 200:
                return None
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return None
    return int(body.get("messages", 0) or 0)


async def create_sessions(billing_url: str, n: int) -> list[str]:
    """``n`` checkout sessions, each for a lenser of its own, through billing's internal route
    (which asks the fake LemonSqueezy for a checkout, as wallet-api's POST /wallet/checkout does)."""
    sessions: list[str] = []
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(base_url=billing_url) as http:

        async def one() -> None:
            async with sem:
                body = {"lenserId": str(uuid4()), "variantId": VARIANT}
                async with http.post(
                    "/internal/checkouts", json=body, headers={"X-Platform-Api-Key": PLATFORM_KEY}
                ) as response:
                    answer = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"POST /internal/checkouts: {response.status} {answer}")
            sessions.append(answer["data"]["sessionId"])

        await asyncio.gather(*(one() for _ in range(n)))
    return sessions


async def credited_count(admin: asyncpg.Connection) -> int:
    return await admin.fetchval(f"SELECT count(*) FROM {WALLET_SCHEMA}.deposits WHERE source = 'purchase'")


async def recorded_count(admin: asyncpg.Connection) -> int:
    return await admin.fetchval(
        f"SELECT count(*) FROM {BILLING_SCHEMA}.deliveries WHERE event_name = 'order_created'"
    )


async def counts(admin: asyncpg.Connection) -> tuple[int, int, int]:
    """(recorded, processed, credited): order deliveries billing recorded, those its processor has
    processed (committed), and purchases the wallet has credited."""
    row = await admin.fetchrow(
        f"SELECT count(*) AS recorded, count(*) FILTER (WHERE status <> 'pending') AS processed"
        f" FROM {BILLING_SCHEMA}.deliveries WHERE event_name = 'order_created'"
    )
    return row["recorded"], row["processed"], await credited_count(admin)


async def drain(
    admin: asyncpg.Connection, amqp_url: str, phase: Phase | None, deadline_s: float, meter: CpuMeter
) -> float | None:
    """Wait until the wallet has credited every order billing recorded, polling the counts every
    0.25 s; returns the seconds from the phase's end, None at the deadline. Records on the phase the
    backlog at its end (accepted, not yet credited, and where it stood), and how fast billing's
    processor and the wallet worked through it once the deliveries stopped (with the CPU split)."""
    recorded, processed, credited = await counts(admin)
    t0 = time.time()
    if phase is not None:
        phase.backlog = {
            "uncredited": recorded - credited,
            "pending_in_billing": recorded - processed,
            "queued_for_wallet": await queue_depth(amqp_url, WALLET_QUEUE),
        }
    ended = phase.ended_at if phase is not None else t0
    processed_at: float | None = t0 if processed >= recorded else None
    processed0, credited0, seconds = processed, credited, None
    limit = time.monotonic() + deadline_s
    async with meter:
        while True:
            _, processed, credited = await counts(admin)
            now = time.time()
            if processed_at is None and processed >= recorded:
                processed_at = now
            if credited >= recorded:
                seconds = max(0.0, now - ended)
                break
            if time.monotonic() > limit:
                log(f"drain: {recorded - credited} still uncredited after {deadline_s:.0f}s")
                break
            await asyncio.sleep(0.25)
    if phase is not None:
        phase.drain_seconds = seconds
        end = time.time()
        phase.drain = {
            "processed": processed - processed0,
            "processed_per_s": (processed - processed0) / max((processed_at or end) - t0, 1e-3),
            "credited": credited - credited0,
            "credited_per_s": (credited - credited0) / max(end - t0, 1e-3),
            "cpu": meter.split,
        }
        log(
            f"{phase.label}: backlog at the end {phase.backlog}; drained {fmt(seconds, 1)}s after it;"
            f" processed {phase.drain['processed_per_s']:.0f}/s, credited {phase.drain['credited_per_s']:.0f}/s"
            f" meanwhile; {meter.split.text()}"
        )
    return seconds


async def credit_timings(admin: asyncpg.Connection, phases: list[Phase]) -> None:
    """Delivery -> credit for every accepted delivery of each deliveries phase, from the logs: the
    wallet's ``CreditsDeposited`` (reference_id = the order id) and, on the way, billing's
    ``DeliveryReceived`` and ``OrderPaid``. ``recorded_at`` is PostgreSQL's ``now()``: the start of the
    transaction that appended the event. For ``OrderPaid`` that is the start of the delivery
    processor's batch (one transaction for up to a batch of deliveries, all sharing its ``now()``),
    i.e. when the processor picked the delivery up; its effects become visible when the whole batch
    commits."""
    credited = {
        r["k"]: r["at"].timestamp()
        for r in await admin.fetch(
            f"SELECT data->>'reference_id' AS k, recorded_at AS at FROM {WALLET_SCHEMA}.events"
            " WHERE type = 'CreditsDeposited' AND data->>'source' = 'purchase'"
        )
    }
    received = {
        r["k"]: r["at"].timestamp()
        for r in await admin.fetch(
            f"SELECT data->'payload'->'data'->>'id' AS k, recorded_at AS at FROM {BILLING_SCHEMA}.events"
            " WHERE type = 'DeliveryReceived'"
        )
    }
    paid: dict[str, tuple[float, str]] = {
        r["k"]: (r["at"].timestamp(), r["tx"])
        for r in await admin.fetch(
            f"SELECT data->>'order_id' AS k, recorded_at AS at, transaction_id::text AS tx"
            f" FROM {BILLING_SCHEMA}.events WHERE type = 'OrderPaid'"
        )
    }
    all_credits = sorted(credited.values())
    for phase in phases:
        if phase.kind != "deliveries":
            continue
        total, to_record, to_pickup, to_credit, missing = [], [], [], [], 0
        batches: Counter[str] = Counter()
        batch_start: dict[str, float] = {}
        last = 0.0
        for order_id, sent in phase.sent:
            at = credited.get(order_id)
            if at is None:
                missing += 1
                continue
            last = max(last, at)
            total.append((at - sent) * 1000)
            if order_id in received and order_id in paid:
                picked, tx = paid[order_id]
                batches[tx] += 1
                batch_start[tx] = picked
                to_record.append((received[order_id] - sent) * 1000)
                to_pickup.append((picked - received[order_id]) * 1000)
                to_credit.append((at - picked) * 1000)
        in_window = sum(1 for at in all_credits if phase.started_at <= at <= phase.ended_at)
        sizes = sorted(batches.values())
        phase.credit = {
            "accepted": len(phase.sent),
            "credited": len(total),
            "missing": missing,
            "in_window": in_window,
            "per_s_window": in_window / (phase.ended_at - phase.started_at),
            "last_credit_after_end": last - phase.ended_at if last else None,
            "total": summary(total),
            "to_record": summary(to_record),
            "to_pickup": summary(to_pickup),
            "to_credit": summary(to_credit),
            "batches": len(sizes),
            "batch_median": percentile([float(x) for x in sizes], 50) if sizes else float("nan"),
            "batch_max": sizes[-1] if sizes else 0,
        }
        c = phase.credit
        log(
            f"{phase.label}: credited {c['credited']}/{c['accepted']}, {c['per_s_window']:.0f} credits/s in the"
            f" window, delivery->credit p50 {c['total']['p50']:.0f} p99 {c['total']['p99']:.0f} ms;"
            f" {c['batches']} processor batches, median {c['batch_median']:.0f}, max {c['batch_max']}"
        )


async def integrity(admin: asyncpg.Connection, accepted: int) -> dict[str, Any]:
    """What the system holds after the last drain: every accepted delivery recorded once, processed,
    published once and credited once, with the balances to match."""
    facts: dict[str, Any] = {"accepted": accepted}
    facts["deliveries"] = dict(
        await admin.fetch(f"SELECT status, count(*) FROM {BILLING_SCHEMA}.deliveries GROUP BY status")
    )
    facts["orders_paid"] = await admin.fetchval(
        f"SELECT count(*) FROM {BILLING_SCHEMA}.events WHERE type = 'OrderPaid'"
    )
    facts["credited"] = await credited_count(admin)
    facts["balance_sum"] = await admin.fetchval(
        f"SELECT coalesce(sum(balance), 0) FROM {WALLET_SCHEMA}.balances"
    )
    facts["balance_expected"] = facts["credited"] * CREDITS
    facts["inbox"] = await admin.fetchval(f"SELECT count(*) FROM {WALLET_SCHEMA}.inbox")
    return facts


async def healthy(url: str, timeout: float = 30) -> None:
    """Until /health answers 200: the database and the broker both up (the relay needs the broker)."""

    async def ok() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await eventually(ok, timeout=timeout)


class AcceptOnlyProcess(ServiceProcess):
    """billing-webhook as ``serve`` runs it but built with ``create_app(settings, background=False)``
    (the option the composition root offers): the same HTTP routes, pool and middlewares, without the
    delivery processor, the relay and the expiry loop. A diagnostic: what acceptance costs alone."""

    CODE = (
        "from billing_webhook.app import SERVICE, create_app\n"
        "from billing_webhook.settings import BillingSettings\n"
        "from lf_web import configure_logging, run\n"
        "settings = BillingSettings()\n"
        "configure_logging(settings.log_level, SERVICE)\n"
        "run(create_app(settings, background=False), settings)\n"
    )

    async def start(self) -> AcceptOnlyProcess:
        self.process = subprocess.Popen([sys.executable, "-c", self.CODE], env=self.env)
        await healthy(self.url)
        return self


REPO = Path(__file__).resolve().parents[2]


def where(obj: Any, text: str | None = None) -> str:
    """``path:line`` of ``obj`` in this checkout (of its first line containing ``text``), so the
    report cites the code as it is when the benchmark runs."""
    try:
        obj = inspect.unwrap(obj)
        path = Path(inspect.getsourcefile(obj) or "").resolve()
        lines, first = inspect.getsourcelines(obj)
        offset = next((i for i, line in enumerate(lines) if text in line), 0) if text else 0
        try:
            shown = path.relative_to(REPO)
        except ValueError:
            shown = Path(*path.parts[-3:])
        return f"{shown}:{first + offset}"
    except (TypeError, OSError):
        return "?"


def where_file(relative: str, text: str) -> str:
    try:
        lines = (REPO / relative).read_text().splitlines()
    except OSError:
        return relative
    line = next((i for i, line in enumerate(lines, start=1) if text in line), None)
    return f"{relative}:{line}" if line else relative


# --- profile (py-spy) -------------------------------------------------------------------------------

# (label, any of these in the stack, and - if given - this one too). Frames read "function (pkg/file.py:line)".
# A sample counts once per group; groups overlap (a handler contains its parts).
PROFILE_GROUPS: list[tuple[str, tuple[str, ...], str | None]] = [
    ("waiting in epoll (the event loop had nothing to run)", ("EpollSelector.select (",), None),
    ("POST /webhook/lemonsqueezy handler, whole", ("lemonsqueezy (billing_webhook/http/webhook.py",), None),
    ("… `deliveries.record` (the DeliveryReceived command)", ("Deliveries.record (",), None),
    (
        "… checkout-session lookup (`queries.session`)",
        ("session (billing_webhook/application/queries.py",),
        "lemonsqueezy (billing_webhook/http/webhook.py",
    ),
    (
        "… `parse_body` (pydantic, JSON:API document)",
        ("parse_body (",),
        "lemonsqueezy (billing_webhook/http/webhook.py",
    ),
    ("… `_json_object` (json.loads of the same body)", ("_json_object (",), None),
    (
        "… `model_for` (builds `Document[Resource]` on every call)",
        ("model_for (",),
        "lemonsqueezy (billing_webhook/http/webhook.py",
    ),
    ("… … of which pydantic rebuilding that class", ("create_generic_submodel (",), "model_for ("),
    ("… signature (HMAC)", ("verify (billing_webhook/signatures.py",), None),
    ("delivery processor (`DeliveryProcessor.handle_batch`)", ("DeliveryProcessor.handle_batch (",), None),
    (
        "relay (contract events, publish, confirms)",
        ("Relay.handle_batch (", "Relay._publish (", "publish (lf_messaging/publisher.py"),
        None,
    ),
    ("reading the log (`read_after`: fetch, decode rows)", ("read_after (",), None),
    (
        "socket sends (`transport.write`: a send(2) per message, all callers)",
        ("_SelectorSocketTransport.write (",),
        None,
    ),
    ("json encode (jsonb codec with sort_keys, responses)", ("JSONEncoder.encode (",), None),
    ("json decode", ("JSONDecoder.decode (",), None),
    ("pydantic validation / serialisation", ("model_validate", "model_dump"), None),
    ("structlog / logging", ("structlog/", "logging/__init__.py"), None),
    ("prometheus_client", ("prometheus_client/",), None),
]


def pyspy_binary() -> str | None:
    """BENCH_PYSPY (a path), else py-spy on the PATH or in this environment; None with BENCH_PROFILE=0."""
    if os.environ.get("BENCH_PROFILE", "").strip() == "0":
        return None
    for candidate in (
        os.environ.get("BENCH_PYSPY", "").strip(),
        shutil.which("py-spy") or "",
        str(Path(sys.executable).parent / "py-spy"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    if os.environ.get("BENCH_PROFILE", "").strip() == "1":
        raise SystemExit("BENCH_PROFILE=1 but no py-spy: `uv pip install py-spy` (not a project dependency)")
    return None


def summarise_profile(raw: str) -> dict[str, Any]:
    """py-spy's collapsed stacks ("frame;frame;... count", root first) -> share of samples per
    group (inclusive) and the hottest leaf frames (self time)."""
    total = 0
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for label, needles, within in PROFILE_GROUPS:
            if any(needle in stack for needle in needles) and (within is None or within in stack):
                groups[label] += count
        leaves[stack.rsplit(";", 1)[-1]] += count
    return {"samples": total, "groups": groups, "leaves": leaves.most_common(10)}


async def _pyspy(pyspy: str, pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process:
    # --idle: every sample counts, waiting included, so shares are shares of wall-clock time. Blocking
    # mode (the default: the process is paused for each sample) so that stacks are whole.
    return await asyncio.create_subprocess_exec(
        pyspy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200",
        "--format", "raw", "--output", str(out), "--idle",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _pyspy_result(proc: asyncio.subprocess.Process, out: Path, timeout: float) -> dict[str, Any] | None:
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0 or not out.exists():
        log(f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
        return None
    keep = os.environ.get("BENCH_PROFILE_DIR", "").strip()
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(keep) / out.name)
    return summarise_profile(out.read_text())


async def profile_phases(
    http: aiohttp.ClientSession,
    url: str,
    seconds: float,
    meter: CpuMeter,
    maker: DeliveryMaker,
    clients: int,
    pid: int,
    pyspy: str,
    admin: asyncpg.Connection,
    amqp_url: str,
    drain_s: float,
) -> dict[str, Any] | None:
    """billing-webhook under py-spy twice: while it accepts deliveries (closed loop), then while its
    processor works through the backlog that left, no deliveries arriving."""
    workdir = Path(tempfile.mkdtemp(prefix="billing-profile-"))
    try:
        maker.prepare(int(seconds * 2000))
        accepting = workdir / "accepting.txt"
        proc = await _pyspy(pyspy, pid, seconds, accepting)
        await asyncio.sleep(0.5)  # py-spy attaches
        phase = Phase(
            "deliveries, closed loop, under py-spy", "deliveries", "closed", "direct", clients, None
        )
        await run_phase(http, phase, url, seconds, meter, maker)
        maker.ready.clear()
        accept = await _pyspy_result(proc, accepting, seconds + 30)
        processing = workdir / "processing.txt"
        proc = await _pyspy(pyspy, pid, seconds, processing)
        await drain(admin, amqp_url, phase, drain_s, meter)
        process = await _pyspy_result(proc, processing, seconds + 30)
        if accept is None or process is None:
            return None
        log(f"profile: {accept['samples']} samples accepting, {process['samples']} processing")
        return {"phase": phase, "accepting": accept, "processing": process}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- statements per step --------------------------------------------------------------------------------

INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")


async def statements_per_step(database_url: str, sessions: list[str]) -> dict[str, Any] | None:
    """The SQL statements (each a client/server round trip) of one delivery at each step, as an
    asyncpg query logger sees them, on pools of one connection in this process, with the services
    stopped: the webhook's session lookup and ``deliveries.record``; one pass of billing's delivery
    processor (``catch_up_once``, its batch transaction included) over that delivery alone; the
    wallet consumer's transaction for the ``CreditsPurchasedV1`` it causes (inbox row + handler, as
    lf_messaging's Consumer runs it). A first delivery (``sessions[0]``) warms the connections up; the
    counted one is the first order of a fresh session (``sessions[1]``) for a lenser without a wallet
    yet, as a real purchase is. Built from the services' own classes: None (the reason logged) if
    they have moved."""
    try:
        from billing_webhook.application import queries
        from billing_webhook.application.billing import Billing
        from billing_webhook.application.processor import DeliveryProcessor
        from billing_webhook.handlers import HANDLERS
        from billing_webhook.integration_events import to_message
        from lf_eventstore.store import EVENT_COLUMNS, to_recorded
        from lf_messaging import MessageContext
        from lf_pg import create_pool
        from lf_projections.follower import catch_up_once
        from wallet_api.application.commands import Wallets
        from wallet_api.handlers import HANDLERS as WALLET_HANDLERS

        seen: list[str] = []
        meta = {
            "requestId": "bench",
            "correlationId": "bench",
            "causationId": "bench",
            "actor": "lemonsqueezy",
        }
        bpool = await create_pool(
            database_url, BILLING_SCHEMA, role="billing_webhook", min_size=1, max_size=1
        )
        wpool = await create_pool(database_url, WALLET_SCHEMA, role="wallet_api", min_size=1, max_size=1)
        try:
            for pool in (bpool, wpool):
                async with pool.acquire() as conn:
                    conn.add_query_logger(lambda record: seen.append(record.query))
            billing, wallets = Billing.create(bpool), Wallets(wpool)
            result: dict[str, Any] = {}
            for n, session in enumerate(sessions[:2]):
                order_id = str(FIRST_ORDER_ID - 1 - n)  # below the benchmark's ids
                body = encode(order(order_id, session_id=session, variant_id=VARIANT, total=100))
                payload = json.loads(body)
                seen.clear()
                await queries.session(bpool, UUID(session))
                await billing.deliveries.record(body, "order_created", payload, metadata=meta)
                await asyncio.sleep(0.01)
                accept = list(seen)
                seen.clear()
                handled = await catch_up_once(
                    bpool, DeliveryProcessor(billing, handlers=HANDLERS), batch_size=500
                )
                await asyncio.sleep(0.01)
                process = list(seen)
                paid = to_recorded(
                    await bpool.fetchrow(
                        f"SELECT {EVENT_COLUMNS} FROM events WHERE type = 'OrderPaid' AND data->>'order_id' = $1",
                        order_id,
                    )
                )
                event = to_message(paid)  # what billing's relay would publish for it
                context = MessageContext(
                    message_id=str(paid.event_id),
                    routing_key=event.routing_key,
                    correlation_id="bench",
                    causation_id=None,
                    headers={},
                    redelivered=False,
                )
                seen.clear()
                async with wpool.acquire() as conn, conn.transaction():
                    await conn.fetchval(
                        "INSERT INTO inbox (message_id, routing_key) VALUES ($1, $2)"
                        " ON CONFLICT (message_id) DO NOTHING RETURNING true",
                        context.message_id,
                        context.routing_key,
                    )
                    await WALLET_HANDLERS[type(event)](conn, event, context, wallets=wallets)
                await asyncio.sleep(0.01)
                credit = list(seen)
                result = {"accept": accept, "process": process, "credit": credit, "process_events": handled}
            for key in ("accept", "process", "credit"):
                result[key] = [q for q in result[key] if not any(x in q for x in INTROSPECTION)]
        finally:
            await bpool.close()
            await wpool.close()
        log("statements: " + ", ".join(f"{k} {len(result[k])}" for k in ("accept", "process", "credit")))
        return result
    except Exception as error:  # noqa: BLE001 - a diagnostic: the report says it is missing
        log(f"statement count skipped: {type(error).__name__}: {error}")
        return None


def model_for_cost() -> dict[str, float] | None:
    """Microseconds per ``billing_webhook.adapters.lemonsqueezy.payloads.model_for`` call, in this process: steady
    (the parametrised generic it names is in pydantic's cache) and right after a full garbage
    collection (pydantic holds parametrised generics weakly: the collection frees it)."""
    try:
        import gc

        from billing_webhook.adapters.lemonsqueezy.payloads import model_for

        payload = {"meta": {"event_name": "order_created"}}
        for _ in range(100):
            model_for(payload)
        t = time.perf_counter()
        for _ in range(20_000):
            model_for(payload)
        steady = (time.perf_counter() - t) / 20_000 * 1e6
        after = []
        for _ in range(7):
            gc.collect()
            t = time.perf_counter()
            model_for(payload)
            after.append((time.perf_counter() - t) * 1e6)
        return {"steady_us": steady, "after_gc_us": sorted(after)[3]}
    except Exception as error:  # noqa: BLE001 - a diagnostic
        log(f"model_for cost skipped: {type(error).__name__}: {error}")
        return None


def short_sql(query: str, width: int = 100) -> str:
    flat = re.sub(r"\s+", " ", query).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def time_wait_to(port: int) -> int:
    """Sockets in TIME_WAIT whose remote port is ``port``: connections to it that the other end
    closed in the last minute (how many connections nginx opened to billing-webhook)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(name).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "06" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


# --- report -----------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


INTRO = """\
## Billing: deliveries to credits

Generated by `make bench` too: tests/bench/run.sh runs tests/bench/billing_bench.py after the wallet
benchmark and appends this section (`BENCH_ONLY=billing make bench` regenerates it alone, in place).
The issue's requirement: signed deliveries accepted per second with the wallet credited, and p99 time
from delivery to credit, beside a baseline in the same run; target **at least 500 deliveries/s on
this machine with p99 acceptance under 50 ms**. Knobs: `BENCH_SECONDS` (each phase; the billing part
takes about 2 minutes at 10), `BENCH_BILLING_CLIENTS` (32), `BENCH_BILLING_RATE` (500),
`BENCH_BILLING_LENSERS` (1000), `BENCH_BILLING_DRAIN_SECONDS` (3 × BENCH_SECONDS, at least 15),
`BENCH_BILLING_GATEWAY` (1), `BENCH_PROFILE` (py-spy: on when installed; it is not a project
dependency, `uv pip install py-spy`).

### What is measured

* **The system**: wallet-api and billing-webhook as real processes (`python -m <package> serve`,
  each with its own `DB_ROLE`, `LOG_LEVEL=WARNING`, their default pools of 10 connections) on a
  scratch database and a fresh RabbitMQ vhost (lf_testing.infra), both schemas migrated first;
  wallet-api starts first, billing-webhook once the queue `wallet-api.events` exists. LemonSqueezy is
  lf_testing's fake, in the benchmark's process, used only to open the checkouts. A delivery goes
  `POST /webhook/lemonsqueezy` (signature, JSON, JSON:API validation, session lookup, the
  `DeliveryReceived` append, then 200) → billing's delivery processor (a log follower: `OrderPaid`, the
  session's completion, `DeliveryProcessed`) → billing's relay (publish, confirm) → RabbitMQ →
  wallet-api's consumer (inbox row + `CreditsDeposited`).
* **Setup**: `L` checkout sessions, one per lenser, through billing's `POST /internal/checkouts`
  (`X-Platform-Api-Key`) for the `dev-100` pack (100 credits). Deliveries are distinct signed
  `order_created` documents (`lf_testing.fakes.lemonsqueezy.order`/`encode`/`sign`, order ids counting
  up) cycling over the sessions, built and signed before each phase so that the client's CPU goes to
  sending. A session's first order completes it and later ones still credit its lenser (billing
  completes a session once), so after the first `L` deliveries processing skips the completion's
  append that a real one-order session makes.
* **Acceptance**: one aiohttp session posts **directly to billing-webhook** (one extra phase goes
  through nginx); latency is the HTTP round trip until the 200. *Closed loop*: `C` connections, each
  posting its next delivery as soon as it has the answer: what the service sustains. *Open loop*:
  deliveries due at the target's rate, each in a task of its own whatever the earlier ones do, over
  the same pool of `C` connections, latency counted from when each was due (no coordinated omission):
  the target's p99 at the target's rate.
* **Baseline, same run, same client**: `GET /health` on billing-webhook (aiohttp, the kit's
  middlewares, a `SELECT 1` on the service's pool, the broker check), closed loop at the same `C` and
  open loop at the same rate. Ratios: deliveries/s ÷ health req/s and p99 ÷ p99.
* **Delivery → credit**: after each deliveries phase the benchmark waits (two count queries every
  0.25 s, up to the drain deadline) until the wallet has credited every order billing recorded, then
  reads the wallet's `CreditsDeposited` events (`reference_id` = order id) and billing's
  `DeliveryReceived` and `OrderPaid`, and compares their `recorded_at` with each delivery's send time
  (`time.time()` in the client; open loop: when it was due). Nothing polls the HTTP API.
  `recorded_at` is PostgreSQL's `now()`, the start of the appending transaction: the credit is
  visible a few ms later, at its commit. Also: the credits/s recorded inside the phase's window, the
  backlog at its end (accepted, not credited: still pending in billing, or in the wallet's queue),
  how long after its end the last credit landed, and how fast the backlog went once deliveries
  stopped (with the CPU split of that drain).
* **CPU split**, in cores of the machine, per phase: the client (this process), billing-webhook,
  wallet-api, nginx (its phase only), PostgreSQL (this database's backends and the server's shared
  processes), RabbitMQ (the whole broker), other (anything else on the machine: on this shared box,
  other people's work) and idle; from /proc.
* **Diagnostics**: the statements of one delivery at each step (asyncpg query logger, services
  stopped); billing-webhook profiled with py-spy while accepting and while processing; and the same
  billing-webhook built with `create_app(settings, background=False)` (no processor, relay or
  expiry; wallet-api stopped) under the same loads, to separate what acceptance costs alone.
"""


def cpu_per_delivery(p: Phase) -> dict[str, float] | None:
    """CPU-milliseconds per accepted delivery, the phase and its drain together (all of these
    deliveries' work, from acceptance to credit), by group."""
    drain = p.drain.get("cpu") if p.drain else None
    if p.cpu is None or drain is None or not p.ok or p.drain_seconds is None:
        return None
    out = {}
    for group in GROUPS:
        seconds = p.cpu.get(group) * p.cpu.wall + drain.get(group) * drain.wall
        out[group] = seconds / p.ok * 1000
    return out


def loop_text(cpu: CpuSplit | None) -> str:
    if cpu is None or cpu.loop is None:
        return "n/a"
    on, waiting = cpu.loop
    return f"{on + waiting:.0%} = {on:.0%} + {waiting:.0%}"


def render(r: dict[str, Any]) -> str:
    cfg, m = r["config"], r["machine"]
    by = {p.label: p for p in r["phases"]}
    hc, dc = by["health, closed loop"], by["deliveries, closed loop"]
    ho, do = by["health, open loop"], by["deliveries, open loop"]
    gw = by.get("deliveries via nginx, closed loop")
    out = [BEGIN, INTRO]
    out.append(
        f"`C = {cfg['clients']}` connections: more than billing-webhook's 10 pooled PostgreSQL connections, so"
        " the service always has requests queued and is the limit, not the client (in trial runs the"
        " closed-loop rate was already flat from C = 8 to 64: only the queueing grew), and many"
        " independent senders, as webhooks are. The baseline uses the same C. At saturation a closed"
        " loop's latency is C ÷ throughput (Little's law), so the closed loop answers \"how many per"
        ' second" and the open loop at the target\'s rate answers "which p99 at 500/s".\n'
    )
    out.append("### This run\n")
    out.append(f"* Date: {r['date']}")
    out.append(f"* Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, {m['os']}")
    out.append(
        f"* PostgreSQL {m['pg']} (synchronous_commit={m['synchronous_commit']}, fsync={m['fsync']});"
        f" RabbitMQ {m['rabbitmq']}; Python {m['python']}, aiohttp {aiohttp.__version__}, asyncpg {asyncpg.__version__}"
    )
    out.append(
        f"* Settings: BENCH_SECONDS={cfg['seconds']}, C={cfg['clients']}, open-loop rate={cfg['rate']:.0f}/s,"
        f" sessions (lensers)={cfg['lensers']:,} ({cfg['sessions_s']:.1f} s to open), drain deadline"
        f" {cfg['drain']:.0f} s; total {r['total_seconds']:.0f} s"
    )
    out.append("")

    # --- targets
    credited_rate = dc.credit.get("per_s_window", 0.0)
    rate_ok = dc.rate >= 500 and credited_rate >= 500
    open_ok = do.rate >= 0.95 * (do.offered or 0) and do.lat["p99"] < 50 and not do.errors
    out.append("### Targets\n")
    out.append("| target | measured | verdict |")
    out.append("|---|---|---|")
    out.append(
        f"| ≥ 500 deliveries/s accepted **with the wallet credited** (closed loop, C = {cfg['clients']}) |"
        f" {fmt(dc.rate)} accepted/s; the wallet credited {fmt(credited_rate)}/s meanwhile and"
        f" {fmt(dc.drain.get('credited_per_s'))}/s once deliveries stopped | {met(rate_ok)} |"
    )
    out.append(
        f"| p99 acceptance < 50 ms at 500 deliveries/s (open loop, {fmt(do.offered)}/s offered) |"
        f" p99 {fmt(do.lat['p99'], 1)} ms ({fmt(do.rate)}/s answered 200) | {met(open_ok)} |"
    )
    out.append(
        f"| p99 delivery → credit (reported; no target) | {fmt(do.credit.get('total', {}).get('p99'))} ms at"
        f" {fmt(do.offered)}/s offered, {fmt(dc.credit.get('total', {}).get('p99'))} ms closed loop | — |"
    )
    out.append("")

    # --- acceptance
    out.append("### Acceptance, beside /health\n")
    out.append(
        f"Milliseconds; {cfg['seconds']} s per main phase. Open loop: latency from when the request was due"
        ' ("service p99" from when it started). Event loop: the share of the phase billing-webhook\'s main thread'
        " (its one event loop) spent running or runnable but waiting for a core (/proc schedstat): near 100%"
        " requests queue for the loop. CPU split in cores (of"
        f" {m['nproc']}): client / billing / wallet / nginx / pg / rabbitmq / other / idle.\n"
    )
    out.append(
        "| phase | req/s | errors | p50 | p90 | p99 | max | service p99 | billing's event loop busy: on a CPU + waiting for one | CPU split |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    rows = [*r["phases"], *r.get("diagnostic", [])]
    for p in rows:
        offered = f" (of {p.offered:.0f}/s)" if p.offered else ""
        lat, srv = p.lat, p.srv
        errors = ", ".join(f"{k}: {v}" for k, v in p.errors.items()) or "0"
        out.append(
            f"| {p.label} | {fmt(p.rate)}{offered} | {errors} | {fmt(lat['p50'], 1)} | {fmt(lat['p90'], 1)} |"
            f" {fmt(lat['p99'], 1)} | {fmt(lat['max'], 1)} | {fmt(srv['p99'], 1)} | {loop_text(p.cpu)} |"
            f" {p.cpu.text() if p.cpu else ''} |"
        )
    out.append("")
    out.append("| deliveries ÷ /health | closed loop | open loop |")
    out.append("|---|---|---|")
    out.append(f"| req/s | {ratio(dc.rate, hc.rate)} | {ratio(do.rate, ho.rate)} |")
    out.append(f"| p50 | {ratio(dc.lat['p50'], hc.lat['p50'])} | {ratio(do.lat['p50'], ho.lat['p50'])} |")
    out.append(f"| p99 | {ratio(dc.lat['p99'], hc.lat['p99'])} | {ratio(do.lat['p99'], ho.lat['p99'])} |")
    out.append("")
    if gw is not None:
        tw = r.get("nginx_connections")
        out.append(
            f"Through nginx (infra/gateway's template rendered as `make dev` does, in front of the same"
            f" billing-webhook; {fmt(gw.seconds, 1)} s): {fmt(gw.rate)} deliveries/s = {ratio(gw.rate, dc.rate)} of"
            f" the direct closed loop, p99 {fmt(gw.lat['p99'], 1)} ms against {fmt(dc.lat['p99'], 1)} ms."
            + (
                f" nginx opened about {tw / max(gw.ok, 1):.2f} upstream connections per delivery ({tw:,} closed"
                " connections to billing-webhook's port in TIME_WAIT afterwards, for"
                f" {gw.ok:,} deliveries): `proxy_pass http://$lf_upstream` with no `upstream` block and"
                f" `keepalive` ({where_file('infra/gateway/nginx.conf.template', 'location /webhook/')}) gives"
                " nginx no pool of upstream connections to reuse."
                if tw is not None
                else ""
            )
            + "\n"
        )

    # --- credit
    out.append("### Delivery → credit\n")
    out.append(
        "Every delivery accepted in the phase, milliseconds from its send (open loop: from when it was due)"
        " to the wallet's `CreditsDeposited`. \"In the window\": the wallet's purchase credits recorded between"
        " the phase's first and last request. \"Once deliveries stopped\": the drain's rates, until the last"
        " credit.\n"
    )
    out.append(
        "| phase | accepted | credited | credited/s in the window | backlog at the end: uncredited (pending in billing / in the wallet's queue) |"
        " last credit after the end | once deliveries stopped: processed/s, credited/s | drain CPU split | p50 | p90 | p99 | max |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    credit_phases = [p for p in r["phases"] if p.kind == "deliveries" and p.credit]
    for p in credit_phases:
        c, b, d = p.credit, p.backlog, p.drain
        last = f"{c['last_credit_after_end']:.1f} s" if c["last_credit_after_end"] is not None else "n/a"
        if p.drain_seconds is None:
            last += f" (not drained in {cfg['drain']:.0f} s)"
        out.append(
            f"| {p.label} | {c['accepted']:,} | {c['credited']:,} | {fmt(c['per_s_window'])} |"
            f" {b.get('uncredited', 0):,} ({b.get('pending_in_billing', 0):,} / {fmt(b.get('queued_for_wallet'))}) | {last} |"
            f" {fmt(d.get('processed_per_s'))}, {fmt(d.get('credited_per_s'))} | {d['cpu'].text() if d.get('cpu') else ''} |"
            f" {fmt(c['total']['p50'])} | {fmt(c['total']['p90'])} | {fmt(c['total']['p99'])} | {fmt(c['total']['max'])} |"
        )
    out.append("")
    out.append(
        "Where the time goes, p50 / p99 in ms. The processor takes deliveries in batches, one transaction per"
        " batch (its `OrderPaid`s share the batch's `now()`): \"picked up\" is that batch's start, and nothing"
        " of the batch is visible to the relay before the whole batch commits.\n"
    )
    out.append(
        "| phase | send → recorded (acceptance) | recorded → picked up by billing's processor | picked up → credited"
        " (rest of the batch, commit, relay, RabbitMQ, wallet) | processor batches: count, median / largest (deliveries) |"
    )
    out.append("|---|---|---|---|---|")
    for p in credit_phases:
        c = p.credit
        out.append(
            f"| {p.label} | {fmt(c['to_record']['p50'])} / {fmt(c['to_record']['p99'])} |"
            f" {fmt(c['to_pickup']['p50'])} / {fmt(c['to_pickup']['p99'])} | {fmt(c['to_credit']['p50'])} /"
            f" {fmt(c['to_credit']['p99'])} | {c['batches']}, {fmt(c['batch_median'])} / {c['batch_max']} |"
        )
    out.append("")
    cpd = cpu_per_delivery(dc)
    if cpd is not None:
        total = sum(cpd[g] for g in ("billing", "wallet", "pg", "rabbitmq"))
        out.append(
            "CPU per delivery, end to end (the closed-loop phase and its drain together, divided by the deliveries"
            " it accepted), ms: "
            + ", ".join(f"{g} {cpd[g]:.2f}" for g in ("billing", "pg", "wallet", "rabbitmq"))
            + f"; **{total:.2f} ms** for the system (client {cpd['client']:.2f} ms aside).\n"
        )
    f = r["integrity"]
    deliveries = ", ".join(f"{k} {v:,}" for k, v in sorted(f["deliveries"].items()))
    out.append(
        f"After the last drain: {f['accepted']:,} deliveries recorded (warm-up included); billing's `deliveries`"
        f" table: {deliveries}; {f['orders_paid']:,} `OrderPaid`; the wallet credited {f['credited']:,} purchases"
        f" ({f['inbox']:,} inbox rows, catalogue messages included) and its balances sum to {f['balance_sum']:,}"
        f" credits ({'=' if f['balance_sum'] == f['balance_expected'] else '≠'} {f['balance_expected']:,} expected).\n"
    )

    # --- statements
    st = r.get("statements")
    if st:
        out.append(
            f"Statements per delivery (each a round trip), as an asyncpg query logger saw them: acceptance"
            f" {len(st['accept'])}, processing {len(st['process'])} (a batch of one: 6 of them are the batch's own,"
            f" shared by up to 500 events), credit {len(st['credit'])}.\n"
        )
        for key, name in (
            ("accept", "acceptance"),
            ("process", "billing's processor"),
            ("credit", "wallet's consumer"),
        ):
            out.append(f"<details><summary>{name}: {len(st[key])} statements</summary>\n")
            out.extend(f"{n}. `{short_sql(q)}`" for n, q in enumerate(st[key], start=1))
            out.append("\n</details>\n")

    if r.get("profile"):
        out.append(profile_table(r["profile"]))
    out.append(analysis(r))
    out.append(END)
    return "\n".join(out) + "\n"


def profile_table(prof: dict[str, Any]) -> str:
    phase, a, b = prof["phase"], prof["accepting"], prof["processing"]
    na, nb = a["samples"] or 1, b["samples"] or 1
    lines = [
        "### Profile of billing-webhook",
        "",
        f"py-spy (`record --idle`, 200 samples/s) on the billing-webhook process: while it accepted"
        f" deliveries in an extra closed-loop phase ({fmt(phase.rate)}/s; {phase.cpu.text() if phase.cpu else ''}), and"
        " then while its processor worked through the backlog that phase left (no deliveries arriving;"
        f" {fmt(phase.drain.get('processed_per_s'))} processed/s). Share of the samples whose stack contains the"
        " frame: shares of wall-clock time, waiting included; groups overlap.",
        "",
        "| where | accepting | processing the backlog |",
        "|---|---|---|",
    ]
    for label, _, _ in PROFILE_GROUPS:
        lines.append(
            f"| {label} | {a['groups'].get(label, 0) / na:.1%} | {b['groups'].get(label, 0) / nb:.1%} |"
        )
    lines += ["", "Hottest frames (self), accepting:", ""]
    lines += [f"* {count / na:.1%} `{frame}`" for frame, count in a["leaves"][:6]]
    lines += ["", "Hottest frames (self), processing the backlog:", ""]
    lines += [f"* {count / nb:.1%} `{frame}`" for frame, count in b["leaves"][:6]]
    lines.append("")
    return "\n".join(lines)


def analysis(r: dict[str, Any]) -> str:
    """The reading of this run's figures: the arithmetic is redone on every run, the code is cited where
    it is now (``where``). Statements that depend on a measurement are only made when it shows them."""
    from billing_webhook.adapters.lemonsqueezy.payloads import model_for
    from billing_webhook.application.processor import DeliveryProcessor
    from billing_webhook.http import webhook
    from lf_eventstore import CommandRunner
    from lf_messaging import Consumer
    from lf_pg.pool import jsonb
    from lf_projections.follower import catch_up_once

    cfg = r["config"]
    by = {p.label: p for p in r["phases"]}
    hc, dc, do = by["health, closed loop"], by["deliveries, closed loop"], by["deliveries, open loop"]
    diag = {p.label: p for p in r.get("diagnostic", [])}
    alone_closed = diag.get("diagnostic: no background work, closed loop")
    alone_open = diag.get("diagnostic: no background work, open loop")
    st, prof = r.get("statements"), r.get("profile")
    cores = dc.cpu.cores if dc.cpu else os.cpu_count() or 1
    lines = ["### Analysis", ""]

    # 1. Throughput with the wallet credited.
    cpd = cpu_per_delivery(dc)
    c = dc.credit
    text = (
        f"**Throughput with the wallet credited: {fmt(min(dc.rate, c.get('per_s_window', 0)))}/s while deliveries"
        f" arrive, {fmt(dc.drain.get('credited_per_s'))}/s at best; the target is 500/s.** billing-webhook accepted {fmt(dc.rate)} deliveries/s closed loop"
        f" ({ratio(dc.rate, hc.rate)} of its /health rate at the same C), but while it did the wallet credited"
        f" {fmt(c.get('per_s_window'))}/s: {dc.backlog.get('uncredited', 0):,} accepted deliveries were still uncredited"
        f" at the phase's end, {dc.backlog.get('pending_in_billing', 0):,} of them not even processed by billing, and"
        f" the last credit landed {fmt(c.get('last_credit_after_end'), 1)} s after the last delivery. Once the"
        f" deliveries stopped, the pipeline credited {fmt(dc.drain.get('credited_per_s'))}/s (billing's processor"
        f" {fmt(dc.drain.get('processed_per_s'))}/s): that, not the acceptance rate, is what this machine sustains."
    )
    if cpd is not None:
        total = sum(cpd[g] for g in ("billing", "wallet", "pg", "rabbitmq"))
        text += (
            f" End to end a delivery cost {total:.2f} ms of CPU (billing-webhook {cpd['billing']:.2f}, PostgreSQL"
            f" {cpd['pg']:.2f}, wallet-api {cpd['wallet']:.2f}, RabbitMQ {cpd['rabbitmq']:.2f}); {cores} cores can"
            f" therefore take at most about {cores * 1000 / total:,.0f} deliveries/s from acceptance to credit, with"
            f" nothing else running and perfect overlap, and 500/s needs the whole chain under {cores * 1000 / 500:.1f} ms."
        )
    lines += [text, ""]

    # 2. The processor.
    if st:
        process = st["process"]
        savepoints = sum(1 for q in process if q.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")))
        text = (
            f"**Billing's delivery processor is serial and loses the event loop to the webhook.** It handles a"
            f" batch's deliveries one after another on one connection (`{where(DeliveryProcessor.handle_batch, 'for event in events')}`),"
            f" each in {len(process) - 6} statements (listed above; the batch adds 6 of its own), {savepoints} of which"
            " are SAVEPOINT/RELEASE, a pair per command bound to the batch's connection"
            f" (`{where(CommandRunner.run, 'conn.transaction()')}`), the rest lock and load the delivery, look up the"
            " session and the pack, `Orders.pay`, `CheckoutSessions.complete` (two fewer for a session's later"
            " orders, as most of this benchmark's are), the `DeliveryProcessed` append and its projection. With no deliveries arriving it processed"
            f" {fmt(dc.drain.get('processed_per_s'))}/s. While they arrive it runs on the same event loop as the"
            f" {cfg['clients']} in-flight requests and on the same two cores: each of its statements waits for a turn"
            f" of a busy loop, and its backend for a busy CPU, so it processed {fmt(c.get('per_s_window'))}/s during the closed loop"
            f" and {fmt(do.credit.get('per_s_window'))}/s at {fmt(do.offered)}/s offered."
        )
        lines += [text, ""]

    # 3. Batches as transactions.
    if c:
        lines += [
            f"**A processor batch is one transaction of up to {c['batch_max']} deliveries** (`{where(catch_up_once, 'read_after(conn, after, limit=batch_size)')}`;"
            " billing-webhook gives its processor `batch_size=50`, against 500 by default). A delivery's credit waits"
            f' for the whole batch to commit before the relay can read its `OrderPaid`: "picked up → credited" was'
            f" p50 {fmt(c['to_credit']['p50'])} ms in the closed loop (median batch {fmt(c['batch_median'])} deliveries,"
            f" largest {c['batch_max']}), and the batch holds one of the service's 10 pooled connections throughout."
            " The processor and the relay each read every event of the log (a delivery appends three or four:"
            " `DeliveryReceived`, `OrderPaid`, `CheckoutSessionCompleted` for a session's first order,"
            " `DeliveryProcessed`) to keep one of them, decoding all of them, the delivery's payload included"
            + (" (`read_after`: a small share of the profile above)." if prof else "."),
            "",
        ]

    # 4. Acceptance latency.
    text = (
        f"**Acceptance latency.** At {fmt(do.offered)}/s offered the webhook answered p50 {fmt(do.lat['p50'], 1)} /"
        f" p99 {fmt(do.lat['p99'], 1)} ms (/health at the same rate: p99 {fmt(by['health, open loop'].lat['p99'], 1)} ms)"
        + (
            f" with billing-webhook's event loop busy {loop_text(do.cpu)} of the time."
            if do.cpu and do.cpu.loop
            else "."
        )
    )
    if alone_open is not None and alone_closed is not None:
        text += (
            f" The same billing-webhook without its background work (`create_app(settings, background=False)`,"
            f" wallet-api stopped) answered p50 {fmt(alone_open.lat['p50'], 1)} / p99 {fmt(alone_open.lat['p99'], 1)} ms at"
            f" that rate, its loop busy {loop_text(alone_open.cpu)}, and sustained {fmt(alone_closed.rate)}/s closed"
            " loop: the acceptance path by itself"
            + (
                " meets the latency target."
                if alone_open.lat["p99"] < 50
                else " misses the latency target too."
            )
            + " The full system adds the processor's and the relay's work on the same event loop (one thread:"
            " accepting a delivery costs it about"
            f" {(alone_open.cpu.get('billing') / alone_open.rate * 1000) if alone_open.cpu and alone_open.rate else float('nan'):.1f} ms"
            " of CPU, processing and relaying it about"
            f" {(dc.drain['cpu'].get('billing') / dc.drain['processed_per_s'] * 1000) if dc.drain.get('cpu') and dc.drain.get('processed_per_s') else float('nan'):.1f} ms"
            " more) and PostgreSQL's, wallet-api's and RabbitMQ's on the same two cores, so the loop is busier"
            " and also waits for a core: requests queue behind it, and the p99 is that queue."
        )
    if dc.cpu and dc.cpu.machine is not None:
        other = max(dc.cpu.machine - sum(dc.cpu.parts.values()), 0)
        if other > 0.2:
            text += (
                f" Other work on this shared machine took {other:.2f} cores during the closed loop: absolute rates"
                " and tails move with it from run to run; the ratios less."
            )
    lines += [text, ""]

    # 5. Findings in the acceptance path.
    items = []
    if st:
        items.append(
            f"**Acceptance is {len(st['accept'])} round trips** (listed above): the session lookup on the pool, then"
            " `deliveries.record`'s transaction (BEGIN, lock the new stream's row, append, the `deliveries` projection,"
            " COMMIT), whose commit waits for the WAL flush, and the append fires `pg_notify` (see the wallet's"
            " findings on `events_notify`)."
        )
    if prof:
        a, n = prof["accepting"], prof["accepting"]["samples"] or 1

        def share(label_start: str) -> float:
            return next((v for k, v in a["groups"].items() if k.startswith(label_start)), 0) / n

        items.append(
            f"**The body is parsed twice** (`{where(webhook._receive, '_json_object(raw)')}` json.loads, then"
            f" `{where(webhook._receive, 'parse_body(')}` validates the same bytes with pydantic's `model_validate_json`),"
            f" and stored re-encoded: the `DeliveryReceived` event carries the payload, encoded again by the jsonb"
            f" codec with `sort_keys` (`{where(jsonb)}`). Shares of billing-webhook's time while accepting:"
            f" `_json_object` {share('… `_json_object`'):.1%}, `parse_body` {share('… `parse_body`'):.1%}, json encoding"
            f" {share('json encode'):.1%}."
        )
        cost = r.get("model_for")
        items.append(
            f"**`model_for` builds `Document[Resource]` on every call** (`{where(model_for, 'MODELS.get(')}`: the"
            " default of `dict.get` is evaluated eagerly). pydantic keeps parametrised generics only weakly, so"
            " whenever the garbage collector has freed that class the next delivery rebuilds it"
            + (
                f": measured here {cost['steady_us']:.1f} µs per call while cached, {cost['after_gc_us']:,.0f} µs right"
                " after a `gc.collect()`"
                if cost
                else ""
            )
            + f". {share('… `model_for`'):.1%} of billing-webhook's samples while accepting"
            f" ({share('… … of which'):.1%} in pydantic's `create_generic_submodel`), for a model only unknown"
            " events use; a module-level constant would make it free."
        )
        items.append(
            f"**Round trips dominate the CPU**: socket sends (one `send(2)` per statement and per HTTP response,"
            f" which on two busy cores also pays for waking the other end) were {share('socket sends'):.1%} of the"
            f" samples while accepting and {prof['processing']['groups'].get(next(k for k, _, _ in PROFILE_GROUPS if k.startswith('socket sends')), 0) / (prof['processing']['samples'] or 1):.1%}"
            " while processing; fewer statements per delivery is the lever, in both paths."
        )
        wait = prof["processing"]["groups"].get(PROFILE_GROUPS[0][0], 0) / (
            prof["processing"]["samples"] or 1
        )
        drain_cpu = prof["phase"].drain.get("cpu")
        items.append(
            f"**While processing the backlog billing-webhook waited in epoll {wait:.0%} of the time**"
            + (
                f" (its event loop busy {loop_text(drain_cpu)})"
                if drain_cpu is not None and drain_cpu.loop
                else ""
            )
            + ": the processor is bound by latency (one statement at a time, each a round trip to PostgreSQL,"
            " whose backends share the same two cores), not by Python's CPU; processing several deliveries at"
            " once (distinct streams, on more than one connection) or in a process of its own would use that time."
        )
    if cpd is not None:
        items.append(
            f"**Downstream of billing**, per delivery: wallet-api {cpd['wallet']:.2f} ms of CPU (its consumer: one"
            f" transaction per message, {len(st['credit']) if st else '?'} statements, prefetch 32:"
            f" `{where(Consumer.__init__, 'prefetch')}`) and RabbitMQ {cpd['rabbitmq']:.2f} ms (persistent messages"
            " with publisher confirms into a quorum queue). They kept pace with billing's processor (after the"
            f" closed loop it processed {fmt(dc.drain.get('processed_per_s'))}/s and the wallet credited"
            f" {fmt(dc.drain.get('credited_per_s'))}/s; {fmt(dc.backlog.get('queued_for_wallet'))} messages were waiting in"
            " the wallet's queue at the phase's end), but they take"
            f" {(cpd['wallet'] + cpd['rabbitmq']) / sum(cpd[g] for g in ('billing', 'wallet', 'pg', 'rabbitmq')):.0%}"
            " of the per-delivery CPU on the same two cores."
        )
    if items:
        lines.append("### Findings: where the time goes in the code\n")
        lines += [f"{n}. {text}" for n, text in enumerate(items, start=1)]
        lines.append("")
    return "\n".join(lines)


def splice(path: Path, section: str) -> None:
    """Replace the section between the markers in ``path``, or append it."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    path.write_text(text if text.endswith("\n") else text + "\n")


# --- main -------------------------------------------------------------------------------------------


async def machine_facts(admin: asyncpg.Connection) -> dict[str, str]:
    facts = {"nproc": str(os.cpu_count()), "python": platform.python_version(), "os": platform.platform()}
    facts["cpu"] = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    facts["memory"] = "? GB RAM"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        facts["memory"] = f"{kb / 1024 / 1024:.0f} GB RAM"
    facts["pg"] = (await admin.fetchval("SHOW server_version")).split()[0]
    for name in ("synchronous_commit", "fsync"):
        facts[name] = await admin.fetchval(f"SHOW {name}")
    facts["rabbitmq"] = "?"
    parts = urlsplit(infra.management_url())
    auth = {"Authorization": aiohttp.encode_basic_auth(parts.username or "guest", parts.password or "guest")}
    with contextlib.suppress(Exception):
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.get(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/overview") as response,
        ):
            facts["rabbitmq"] = (await response.json()).get("rabbitmq_version", "?")
    return facts


async def main(out: Path | None, splice_into: Path | None) -> None:
    started = time.perf_counter()
    # The services' classes run in this process for the statement counts: their info logs are noise here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # lf_testing.infra reads these (and would start containers without them).
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    os.environ.setdefault("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    check_local(os.environ["DATABASE_URL"])
    check_local(os.environ["AMQP_URL"])
    seconds = env_int("BENCH_SECONDS", 10)
    clients = env_int("BENCH_BILLING_CLIENTS", 32)
    rate = env_float("BENCH_BILLING_RATE", 500)
    lensers = env_int("BENCH_BILLING_LENSERS", 1000)
    drain_s = env_float("BENCH_BILLING_DRAIN_SECONDS", max(15.0, 3.0 * seconds))
    with_gateway = os.environ.get("BENCH_BILLING_GATEWAY", "1").strip() != "0"
    if with_gateway and not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        log("no nginx: the phase through the gateway is skipped")
        with_gateway = False
    pyspy = pyspy_binary()
    warmup = max(1.0, seconds / 5)
    short = max(2.0, seconds / 4)  # the extra phases: nginx, py-spy
    r: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "phases": []}

    database_url = await infra.create_database()
    amqp_url = await infra.create_vhost()
    dbname = urlsplit(database_url).path.lstrip("/")
    log(f"database {dbname}, vhost {urlsplit(amqp_url).path.lstrip('/')}, BENCH_SECONDS={seconds}")
    admin: asyncpg.Connection | None = None
    fake: FakeLemonSqueezy | None = None
    processes: list[ServiceProcess] = []
    gateway: Gateway | None = None
    try:
        admin = await asyncpg.connect(database_url)
        r["machine"] = await machine_facts(admin)
        await migrate(database_url, WALLET_SCHEMA, WALLET_MIGRATIONS, role="wallet_api")
        await migrate(database_url, BILLING_SCHEMA, BILLING_MIGRATIONS, role="billing_webhook")
        fake = await FakeLemonSqueezy().start()
        common = {
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "PLATFORM_API_KEY": PLATFORM_KEY,
            "LOG_LEVEL": "WARNING",
        }
        billing_env = {
            **common,
            "DB_ROLE": "billing_webhook",
            "LEMONSQUEEZY_API_URL": fake.url,
            "LEMONSQUEEZY_WEBHOOK_SECRET": SECRET,
            "SEED_CREDIT_PACKS": "true",
        }
        billing = ServiceProcess("billing_webhook", billing_env)
        wallet = ServiceProcess(
            "wallet_api", {**common, "DB_ROLE": "wallet_api", "BILLING_WEBHOOK_URL": billing.url}
        )
        processes += [wallet, billing]
        # Consumers first: a message published before its queue exists is dropped (see tests/e2e).
        await wallet.start()
        await queue_declared(amqp_url, WALLET_QUEUE)
        await billing.start()
        await healthy(billing.url)
        assert wallet.process is not None and billing.process is not None
        pids: dict[str, set[int]] = {"billing": {billing.process.pid}, "wallet": {wallet.process.pid}}
        if with_gateway:
            gateway = await Gateway({"BILLING_WEBHOOK_UPSTREAM": f"127.0.0.1:{billing.port}"}).start()
            assert gateway.process is not None
            pids["nginx"] = {gateway.process.pid}
        meter = CpuMeter(dbname, pids, loop_pid=billing.process.pid)
        log(f"services up ({time.perf_counter() - started:.0f}s)")

        t = time.perf_counter()
        sessions = await create_sessions(billing.url, lensers)
        sessions_s = time.perf_counter() - t
        log(f"{len(sessions)} checkout sessions in {sessions_s:.1f}s")
        maker = DeliveryMaker(sessions)
        webhook = f"{billing.url}/webhook/lemonsqueezy"
        health = f"{billing.url}/health"

        connector = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def deliveries_phase(phase: Phase, url: str, length: float, prepare: int) -> Phase:
                maker.prepare(prepare)
                await run_phase(http, phase, url, length, meter, maker)
                maker.ready.clear()
                await drain(admin, amqp_url, phase, drain_s, meter)
                return phase

            # Warm-up, not reported: connections, prepared statements, the first credits.
            warm = Phase("warm-up", "deliveries", "closed", "direct", clients, None)
            await deliveries_phase(warm, webhook, warmup, 0)
            await run_phase(
                http,
                Phase("warm-up, health", "health", "closed", "direct", clients, None),
                health,
                warmup,
                meter,
                None,
            )
            estimate = max(warm.rate, 100.0)

            phases = r["phases"]
            phases.append(
                await run_phase(
                    http,
                    Phase("health, closed loop", "health", "closed", "direct", clients, None),
                    health,
                    seconds,
                    meter,
                    None,
                )
            )
            phases.append(
                await deliveries_phase(
                    Phase("deliveries, closed loop", "deliveries", "closed", "direct", clients, None),
                    webhook,
                    seconds,
                    int(estimate * seconds * 1.5),
                )
            )
            phases.append(
                await run_phase(
                    http,
                    Phase("health, open loop", "health", "open", "direct", clients, rate),
                    health,
                    seconds,
                    meter,
                    None,
                )
            )
            phases.append(
                await deliveries_phase(
                    Phase("deliveries, open loop", "deliveries", "open", "direct", clients, rate),
                    webhook,
                    seconds,
                    int(rate * seconds) + 1,
                )
            )
            if gateway is not None:
                before = time_wait_to(billing.port)
                phase = Phase(
                    "deliveries via nginx, closed loop", "deliveries", "closed", "nginx", clients, None
                )
                maker.prepare(int(estimate * short * 1.5))
                await run_phase(http, phase, f"{gateway.url}/webhook/lemonsqueezy", short, meter, maker)
                maker.ready.clear()
                r["nginx_connections"] = max(time_wait_to(billing.port) - before, 0)
                await drain(admin, amqp_url, phase, drain_s, meter)
                phases.append(phase)
            if pyspy is not None:
                r["profile"] = await profile_phases(
                    http,
                    webhook,
                    short,
                    meter,
                    maker,
                    clients,
                    billing.process.pid,
                    pyspy,
                    admin,
                    amqp_url,
                    drain_s,
                )

        await credit_timings(admin, r["phases"])
        r["integrity"] = await integrity(admin, await recorded_count(admin))
        log(f"integrity: {r['integrity']}")

        # Diagnostics, with the services stopped (their processor and consumer would race these).
        fresh = await create_sessions(billing.url, 2)
        if gateway is not None:
            gateway.stop()
            gateway = None
        for process in (billing, wallet):
            process.stop()
        r["statements"] = await statements_per_step(database_url, fresh)
        r["model_for"] = model_for_cost()
        alone = AcceptOnlyProcess("billing_webhook", billing_env)
        processes.append(alone)
        await alone.start()
        assert alone.process is not None
        meter.pids, meter.loop_pid = {"billing": {alone.process.pid}}, alone.process.pid
        diag: list[Phase] = []
        url = f"{alone.url}/webhook/lemonsqueezy"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=clients), timeout=timeout
        ) as http:
            maker.prepare(int(estimate * 2))
            await run_phase(
                http,
                Phase("diagnostic warm-up", "deliveries", "closed", "direct", clients, None),
                url,
                1.0,
                meter,
                maker,
            )
            for phase in (
                Phase(
                    "diagnostic: no background work, closed loop",
                    "deliveries",
                    "closed",
                    "direct",
                    clients,
                    None,
                ),
                Phase(
                    "diagnostic: no background work, open loop", "deliveries", "open", "direct", clients, rate
                ),
            ):
                maker.prepare(int(max(estimate * 1.5, rate) * seconds / 2) + 1)
                diag.append(await run_phase(http, phase, url, seconds / 2, meter, maker))
                maker.ready.clear()
        alone.stop()
        r["diagnostic"] = diag

        r["config"] = {
            "seconds": seconds,
            "clients": clients,
            "rate": rate,
            "lensers": lensers,
            "drain": drain_s,
            "sessions_s": sessions_s,
        }
        r["total_seconds"] = time.perf_counter() - started
        section = render(r)
        if out is not None:
            out.write_text(section)
            log(f"section written to {out}")
        if splice_into is not None:
            splice(splice_into, section)
            log(f"section spliced into {splice_into}")
        log(f"done in {r['total_seconds']:.0f}s")
    finally:
        if gateway is not None:
            gateway.stop()
        for process in reversed(processes):
            with contextlib.suppress(Exception):
                process.stop()
        if fake is not None:
            await fake.close()
        if admin is not None:
            await admin.close()
        with contextlib.suppress(Exception):
            await infra.drop_database(database_url)
        with contextlib.suppress(Exception):
            await infra.delete_vhost(amqp_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="write the section (with its markers) to this file")
    parser.add_argument("--splice-into", type=Path, help="replace the section in this file (or append it)")
    args = parser.parse_args()
    if args.out is None and args.splice_into is None:
        raise SystemExit("--out FILE or --splice-into FILE (e.g. docs/benchmarks.md)")
    asyncio.run(main(args.out, args.splice_into))
