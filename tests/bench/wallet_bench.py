# ruff: noqa: E501, RUF001, ASYNC240 - a report writer: long prose lines, multiplication signs, small /proc reads
"""wallet-api benchmarks (``make bench``): throughput, latency and rebuild, each beside a baseline.

Run through ``tests/bench/run.sh``, which creates a scratch database, runs this against it, drops it
and puts the report in docs/benchmarks.md. It can also run on its own:

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<scratch db> \
        uv run python tests/bench/wallet_bench.py --out /tmp/benchmarks.md

Every figure is measured in the same process and run as its baseline, and reported as a ratio:
these machines are noisy, so absolute numbers travel badly. Nothing here is a test: it never fails on
a missed target, it reports it.

Environment (all optional):
    BENCH_SECONDS           length of each measured phase (default 10)
    BENCH_CLIENTS           concurrent clients for throughput (pgbench -c and the asyncpg pool; 16)
    BENCH_LATENCY_CLIENTS   concurrent clients for the latency phases (200)
    BENCH_WALLETS           wallets in the "many wallets" phase (1000)
    BENCH_BIG_EVENTS        events in the long wallet (1000000; rounded down to an even number)
    BENCH_OPEN_RATE         offered reserves/s in the open-loop phases (default: half of what one
                            wallet sustained in the closed-loop phase just measured, at most 100)
    BENCH_REBUILD_SECONDS   time budget of the ledger rebuild (default 6 x BENCH_SECONDS); each
                            inline projection's rebuild, and the read baseline, get a quarter of it
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
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

from lf_eventstore import RecordedEvent, read_after
from lf_eventstore.reader import START, Checkpoint
from lf_eventstore.store import EVENT_COLUMNS, load_stream, to_recorded
from lf_pg import create_pool, migrate
from lf_pg.pool import connect
from lf_projections import Projection, rebuild
from wallet_api.app import MIGRATIONS, SCHEMA
from wallet_api.application.commands import REPOSITORY, Wallets
from wallet_api.domain.events import EVENT_TYPES, CreditsReserved, ReservationReleased
from wallet_api.domain.wallet import Wallet
from wallet_api.projections import INLINE, LEDGER

DB = {"name": ""}  # the benchmark database's name, for CpuMeter
META = {"actor": "bench", "requestId": "bench", "correlationId": "bench", "causationId": "bench"}
BIG_DEPOSIT = 10**12
GRANT = 10**9


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- CPU accounting --------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSplit:
    wall: float
    client: float  # cores used by the client (this process, or pgbench)
    postgres: float | None  # cores used by this database's backends and the server's shared processes
    machine: float | None  # cores busy on the whole machine
    cores: int

    def text(self) -> str:
        parts = [f"client {self.client:.2f}"]
        if self.postgres is not None:
            parts.append(f"pg {self.postgres:.2f}")
        if self.machine is not None:
            other = self.machine - self.client - (self.postgres or 0)
            parts.append(f"other {max(other, 0):.2f}")
            parts.append(f"idle {max(self.cores - self.machine, 0):.2f}")
        return " / ".join(parts)


class CpuMeter:
    """Where the CPU went during a phase: the client, PostgreSQL, everything else, idle.

    PostgreSQL is counted per process from /proc: the backends connected to the benchmark database
    (their titles name it) and the server's shared processes (WAL writer, checkpointer, ...), so other
    databases' work on a shared server is "other". Backends that exit during the phase (pgbench's) are
    counted up to their last sample, taken every 0.2 s.
    """

    def __init__(self, dbname: str, *, client: str = "self") -> None:
        self.dbname, self.client = dbname, client
        self.start_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, float] = {}
        self.available = Path("/proc/self/stat").exists()
        self._task: asyncio.Task[None] | None = None

    def _ours(self) -> dict[int, float]:
        found: dict[int, float] = {}
        workers: dict[int, tuple[int, float]] = {}  # parallel workers: their leader's pid, their CPU
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
                head, _, rest = raw.rpartition(")")
                if head.partition("(")[2] != "postgres":
                    continue
                title = (
                    Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            fields = rest.split()
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
            if f" {self.dbname} " in title or any(name in title for name in AUX_PROCESSES) or "-D " in title:
                found[int(entry)] = cpu
            elif leader := re.search(r"parallel worker for PID (\d+)", title):
                workers[int(entry)] = (int(leader.group(1)), cpu)
        for pid, (leader_pid, cpu) in workers.items():
            if leader_pid in found:
                found[pid] = cpu
        return found

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.last_cpu.update(self._ours())

    def _rusage(self) -> float:
        who = resource.RUSAGE_SELF if self.client == "self" else resource.RUSAGE_CHILDREN
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    async def __aenter__(self) -> CpuMeter:
        if self.available:
            self.start_cpu = self._ours()
            self.last_cpu = dict(self.start_cpu)
            self._task = asyncio.create_task(self._poll())
        self._machine = _machine_busy()
        self._client = self._rusage()
        self._wall = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        client = self._rusage() - self._client
        machine, pg = None, None
        end = _machine_busy()
        if self._machine and end and end[1] > self._machine[1]:
            machine = (end[0] - self._machine[0]) / (end[1] - self._machine[1]) * (os.cpu_count() or 1)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.last_cpu.update(self._ours())
            pg = sum(cpu - self.start_cpu.get(pid, 0.0) for pid, cpu in self.last_cpu.items()) / self.wall
        self.split = CpuSplit(self.wall, client / self.wall, pg, machine, os.cpu_count() or 1)


# --- statistics ---------------------------------------------------------------------------------


@dataclass
class Latencies:
    samples_ns: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        values = sorted(v / 1e6 for v in self.samples_ns)
        return {
            "n": len(values),
            "mean": sum(values) / len(values) if values else float("nan"),
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": values[-1] if values else float("nan"),
        }


# --- pgbench --------------------------------------------------------------------------------------

PGBENCH_TABLE = "bench_counter"
PGBENCH_SCRIPTS = {
    "many": "\\set id random(1, 1000)\nUPDATE public.bench_counter SET n = n + 1 WHERE id = :id;\n",
    "hot": "UPDATE public.bench_counter SET n = n + 1 WHERE id = 1;\n",
    # Diagnostic: the same as "many" plus the pg_notify every event append fires (events_notify).
    "many_notify": (
        "\\set id random(1, 1000)\nBEGIN;\nUPDATE public.bench_counter SET n = n + 1 WHERE id = :id;\n"
        "SELECT pg_notify('bench_events', '');\nEND;\n"
    ),
}


async def pgbench_setup(admin: asyncpg.Connection) -> None:
    await admin.execute(f"DROP TABLE IF EXISTS public.{PGBENCH_TABLE}")
    await admin.execute(
        f"CREATE TABLE public.{PGBENCH_TABLE} (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0)"
    )
    await admin.execute(f"INSERT INTO public.{PGBENCH_TABLE} (id) SELECT generate_series(1, 1000)")
    await admin.execute(f"VACUUM ANALYZE public.{PGBENCH_TABLE}")


@dataclass
class PgbenchResult:
    script: str
    tps: float
    latency_ms: float
    cpu: CpuSplit


async def run_pgbench(
    admin: asyncpg.Connection, url: str, script: str, clients: int, seconds: int, workdir: Path
) -> PgbenchResult:
    await admin.execute(f"VACUUM public.{PGBENCH_TABLE}")
    path = workdir / f"{script}.sql"
    path.write_text(PGBENCH_SCRIPTS[script])
    cmd = [
        "pgbench",
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        str(min(2, clients)),
        "-T",
        str(seconds),
    ]
    cmd += ["-f", str(path), url]
    async with CpuMeter(DB["name"], client="children") as meter:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    text = out.decode()
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    lat = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    if proc.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench {script} failed:\n{text}")
    result = PgbenchResult(
        script, float(tps.group(1)), float(lat.group(1)) if lat else float("nan"), meter.split
    )
    log(f"pgbench {script}: {result.tps:.0f} tps, {result.cpu.text()}")
    return result


# --- the long wallet, built in SQL -----------------------------------------------------------------

BULK_SQL = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata, recorded_at)
SELECT $1::text, v, gen_random_uuid(),
       CASE WHEN v % 2 = 1 THEN 'CreditsReserved' ELSE 'ReservationReleased' END,
       CASE WHEN v % 2 = 1 THEN jsonb_build_object(
                'lenser_id', $2::text,
                'at', to_char(($3::timestamptz + v * interval '1 second') AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'reservation_id', md5($1::text || '/' || ((v - 1) / 2))::uuid::text,
                'reference_id', 'bulk-' || ((v - 1) / 2),
                'amount', 1,
                'expires_at', to_char(($3::timestamptz + (v + 300) * interval '1 second') AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
            ELSE jsonb_build_object(
                'lenser_id', $2::text,
                'at', to_char(($3::timestamptz + v * interval '1 second') AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'reservation_id', md5($1::text || '/' || ((v - 1) / 2))::uuid::text,
                'reference_id', 'bulk-' || ((v - 1) / 2),
                'amount', 1,
                'reason', 'released')
       END,
       $5::jsonb,
       $3::timestamptz + v * interval '1 second'
FROM generate_series($6::int, $4::int) AS v
"""

# What the reservations projection would hold for those pairs (one row per pair, released).
BULK_RESERVATIONS_SQL = """
INSERT INTO reservations (reservation_id, lenser_id, reference_id, amount, status, expires_at, created_at,
                          closed_at)
SELECT md5($1::text || '/' || p)::uuid, $2::uuid, 'bulk-' || p, 1, 'released',
       $3::timestamptz + (2 * p + 1 + 300) * interval '1 second',
       $3::timestamptz + (2 * p + 1) * interval '1 second',
       $3::timestamptz + (2 * p + 2) * interval '1 second'
FROM generate_series(1, ($4::int - 2) / 2) AS p
"""


def expected_bulk_snapshot(lenser_id: UUID, start: dt.datetime, events: int) -> tuple[Wallet, dict[str, Any]]:
    """The aggregate as ``Wallet`` itself computes it after the bulk stream: opened, one deposit, then
    reserve/release pairs, each of which leaves the state as it found it (checked on a real pair)."""
    wallet = Wallet.open_for(lenser_id, start)
    wallet.deposit(
        BIG_DEPOSIT,
        source="grant",
        reference_id="bulk",
        description="bench",
        at=start + dt.timedelta(seconds=2),
    )
    before = wallet.to_snapshot()
    rid = uuid4()
    at = start + dt.timedelta(seconds=3)
    wallet._apply(
        CreditsReserved(
            lenser_id=lenser_id,
            at=at,
            reservation_id=rid,
            reference_id="x",
            amount=1,
            expires_at=at + dt.timedelta(seconds=300),
        )
    )
    wallet._apply(
        ReservationReleased(
            lenser_id=lenser_id, at=at, reservation_id=rid, reference_id="x", amount=1, reason="released"
        )
    )
    assert wallet.to_snapshot() == before, "a reserve/release pair changed the wallet's state"
    wallet.version = events
    wallet._pending.clear()
    return wallet, wallet.to_snapshot()


async def build_big_wallet(pool: asyncpg.Pool, events: int) -> tuple[UUID, dict[str, Any]]:
    lenser_id = uuid4()
    stream = REPOSITORY.stream_id(lenser_id)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=events + 3600)).replace(microsecond=0)
    _, snapshot = expected_bulk_snapshot(lenser_id, start, events)
    async with pool.acquire() as conn:
        # Versions 1-2 through the real code: the streams row, the balances and deposits rows.
        async with conn.transaction():
            wallet = Wallet.open_for(lenser_id, start)
            wallet.deposit(
                BIG_DEPOSIT,
                source="grant",
                reference_id="bulk",
                description="bench",
                at=start + dt.timedelta(seconds=2),
            )
            recorded = await REPOSITORY.save(conn, lenser_id, wallet, metadata=META)
            for projection in INLINE:
                await projection.apply(conn, recorded)
        t = time.perf_counter()
        chunk = 250_000
        for first in range(3, events + 1, chunk):
            last = min(events, first + chunk - 1)
            await conn.execute(BULK_SQL, stream, str(lenser_id), start, last, META, first)
        await conn.execute(BULK_RESERVATIONS_SQL, stream, str(lenser_id), start, events)
        await conn.execute(
            "UPDATE streams SET version = $2, snapshot = $3, snapshot_version = $2 WHERE stream_id = $1",
            stream,
            events,
            snapshot,
        )
        await conn.execute(
            "UPDATE balances SET updated_at = $2 WHERE lenser_id = $1",
            lenser_id,
            start + dt.timedelta(seconds=events),
        )
        log(f"long wallet: {events} events inserted in {time.perf_counter() - t:.1f}s")
    return lenser_id, snapshot


async def verify_big_wallet(
    pool: asyncpg.Pool, lenser_id: UUID, snapshot: dict[str, Any], events: int
) -> dict:
    """Sanity checks before measuring; raises if the SQL-built stream is not what the code would write."""
    stream = REPOSITORY.stream_id(lenser_id)
    facts: dict[str, Any] = {}
    async with pool.acquire() as conn:
        # 1. The generated rows are exactly what the domain events serialise to.
        rows = await conn.fetch(
            "SELECT version, type, data FROM events WHERE stream_id = $1 AND (version <= 6 OR version > $2)"
            " ORDER BY version",
            stream,
            events - 4,
        )
        for row in rows:
            model = EVENT_TYPES[row["type"]].model_validate(row["data"])
            assert model.model_dump(mode="json") == row["data"], (row["version"], row["data"])
        # 2. Replaying the first 1,000 stored events through the aggregate gives the snapshot we stored.
        replayed = Wallet()
        state = await conn.fetch(
            "SELECT position, transaction_id::text::bigint AS transaction_id, stream_id, version, event_id, type,"
            " data, metadata, recorded_at FROM events WHERE stream_id = $1 AND version <= 1000 ORDER BY version",
            stream,
        )
        for row in state:
            replayed.replay(RecordedEvent(**dict(row)))
        assert replayed.to_snapshot() == snapshot, "replay of the stored stream disagrees with the snapshot"
        # 3. The repository loads it from the snapshot, reading only the events after it.
        head = await load_stream(conn, stream)
        assert head is not None and head.version == events and head.snapshot_version == events
        assert len(head.events) == head.version - head.snapshot_version == 0
        wallet = await REPOSITORY.load(conn, lenser_id, lock=False)
        assert wallet is not None and wallet.version == events
        assert (wallet.balance, wallet.reserved, wallet.available) == (BIG_DEPOSIT, 0, BIG_DEPOSIT)
        assert wallet.to_snapshot() == snapshot
        balance = await conn.fetchrow(
            "SELECT balance, reserved FROM balances WHERE lenser_id = $1", lenser_id
        )
        assert (balance["balance"], balance["reserved"]) == (BIG_DEPOSIT, 0)
        count = await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream)
        assert count == events, count
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM events"
            " WHERE stream_id = $1 AND version > $2 ORDER BY version",
            stream,
            events,
        )
        facts["plan"] = "; ".join(
            re.sub(r"\s+", " ", row[0].strip().lstrip("-> ")) for row in plan if "Scan" in row[0]
        )
        facts["stored_events"] = count
    log(f"long wallet verified: balance {BIG_DEPOSIT}, snapshot at v{events}, plan: {facts['plan']}")
    return facts


# --- wallets ---------------------------------------------------------------------------------------


async def gather_limited(n: int, coros: Iterable[Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def new_wallet(wallets: Wallets, amount: int = GRANT) -> UUID:
    lenser_id = uuid4()
    await wallets.grant(lenser_id, amount, reason="bench", idempotency_key="bench", metadata=META)
    return lenser_id


async def ten_event_wallet(wallets: Wallets) -> UUID:
    """Opened, granted, then four reserve/capture pairs: ten events, no snapshot yet."""
    lenser_id = await new_wallet(wallets)
    for _ in range(4):
        reservation, _ = await wallets.reserve(lenser_id, 1, f"warm-{uuid4().hex}", metadata=META)
        await wallets.capture(reservation.reservation_id, 1, metadata=META)
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
                reservation, created = await wallets.reserve(
                    lenser_id, 1, f"pair-{uuid4().hex}", metadata=META
                )
                assert created
                await wallets.capture(reservation.reservation_id, 1, metadata=META)
                done[k] += 1

        async with CpuMeter(DB["name"]) as meter:
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


def combine(splits: list[CpuSplit]) -> CpuSplit:
    """Several phases' CPU splits as one, weighted by their length."""
    wall = sum(x.wall for x in splits)

    def avg(values: list[float | None]) -> float | None:
        if any(v is None for v in values):
            return None
        return sum(v * x.wall for v, x in zip(values, splits, strict=True)) / wall  # type: ignore[operator]

    return CpuSplit(
        wall,
        avg([x.client for x in splits]) or 0.0,
        avg([x.postgres for x in splits]),
        avg([x.machine for x in splits]),
        splits[0].cores,
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
        reservation, created = await wallets.reserve(lenser_id, 1, f"lat-{uuid4().hex}", metadata=META)
        end = time.perf_counter_ns()
        assert created
        await wallets.release(reservation.reservation_id, metadata=META)
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

    async with CpuMeter(DB["name"]) as meter:
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
    big_before = await stream_version(wallets.commands.pool, big_id)
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


# --- diagnostics: what one command costs ---------------------------------------------------------------


async def load_cost(pool: asyncpg.Pool, lenser_id: UUID, n: int = 60, rounds: int = 7) -> dict[str, float]:
    """Microseconds per ``REPOSITORY.load`` and per ``load_stream`` (its fetch and decode part): the
    median of ``rounds`` rounds of ``n`` calls each, the two interleaved, to shrug off bursts of other load."""
    stream = REPOSITORY.stream_id(lenser_id)
    loads, fetches = [], []
    async with pool.acquire() as conn:
        head = await load_stream(conn, stream)
        assert head is not None
        for _ in range(20):
            await REPOSITORY.load(conn, lenser_id, lock=False)
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(n):
                await REPOSITORY.load(conn, lenser_id, lock=False)
            loads.append((time.perf_counter() - t) / n)
            t = time.perf_counter()
            for _ in range(n):
                await load_stream(conn, stream)
            fetches.append((time.perf_counter() - t) / n)
    return {
        "version": head.version,
        "replayed": len(head.events),
        "open": len((head.snapshot or {}).get("open", {})),
        "load_us": sorted(loads)[rounds // 2] * 1e6,
        "fetch_us": sorted(fetches)[rounds // 2] * 1e6,
    }


async def statements_per_command(url: str) -> dict[str, Any]:
    """The statements (each one client/server round trip) of one reserve and one capture, as the server
    sees them from an asyncpg query logger, pool reset included."""
    pool = await create_pool(url, SCHEMA, min_size=1, max_size=1)
    try:
        seen: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: seen.append(record.query))
        wallets = Wallets(pool)
        lenser_id = await new_wallet(wallets)
        await asyncio.sleep(0.01)
        seen.clear()
        reservation, _ = await wallets.reserve(lenser_id, 1, f"count-{uuid4().hex}", metadata=META)
        await asyncio.sleep(0.01)
        reserve = list(seen)
        seen.clear()
        await wallets.capture(reservation.reservation_id, 1, metadata=META)
        await asyncio.sleep(0.01)
        capture = list(seen)
        result = {
            "reserve": len(reserve),
            "capture": len(capture),
            "resets": sum("RESET ALL" in q for q in reserve + capture),
            "reserve_list": reserve,
            "capture_list": capture,
        }
        log(f"statements: reserve {len(reserve)}, capture {len(capture)}")
        return result
    finally:
        await pool.close()


def short_sql(query: str, width: int = 90) -> str:
    flat = re.sub(r"\s+", " ", query).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# --- rebuild ----------------------------------------------------------------------------------------


class BudgetExhausted(Exception):
    pass


@dataclass(frozen=True)
class Metered(Projection):
    """The same projection, counting the events each committed batch applied; with a deadline, the
    rebuild stops (its current batch rolled back, the live tables untouched) once it has passed."""

    meter: dict[str, float] = field(default_factory=dict)

    async def apply(self, conn: asyncpg.Connection, events: Iterable[RecordedEvent]) -> None:
        events = list(events)
        deadline = self.meter.get("deadline")
        if deadline and time.perf_counter() > deadline:
            raise BudgetExhausted()
        await super().apply(conn, events)
        self.meter["events"] = self.meter.get("events", 0) + len(events)


@dataclass
class RebuildResult:
    name: str
    events: int
    seconds: float
    complete: bool
    rows: int | None
    cpu: CpuSplit

    @property
    def per_s(self) -> float:
        return self.events / self.seconds


async def rebuild_one(url: str, projection: Projection, budget: float, follower: str | None) -> RebuildResult:
    # Every field of the projection (handlers, and a batch handler if it has one), plus the meter.
    metered = Metered(**{f.name: getattr(projection, f.name) for f in fields(projection)}, meter={})
    conn = await connect(url, SCHEMA)
    try:
        async with CpuMeter(DB["name"]) as meter:
            metered.meter["deadline"] = time.perf_counter() + budget
            rows, complete = None, True
            try:
                rows = await rebuild(conn, SCHEMA, metered, follower_name=follower)
            except BudgetExhausted:
                complete = False
    finally:
        await conn.close()
    result = RebuildResult(
        projection.name, int(metered.meter.get("events", 0)), meter.wall, complete, rows, meter.split
    )
    log(
        f"rebuild {projection.name}: {result.events} events in {result.seconds:.1f}s = {result.per_s:.0f}/s,"
        f" complete={complete}, {result.cpu.text()}"
    )
    return result


async def read_baseline(url: str, types: list[str], limit_events: int, budget: float) -> tuple[int, float]:
    """Reading (and decoding) the log the way a rebuild does, without applying anything."""
    conn = await connect(url, SCHEMA)
    try:
        t = time.perf_counter()
        after, n = START, 0
        while n < limit_events and time.perf_counter() - t < budget:
            async with conn.transaction():
                batch = await read_after(conn, after, limit=5000, types=types)
            if not batch:
                break
            n += len(batch)
            after = Checkpoint(batch[-1].transaction_id, batch[-1].position)
        return n, time.perf_counter() - t
    finally:
        await conn.close()


INDEX_ORDER_READ = (
    f"SELECT {EVENT_COLUMNS} FROM events"
    " WHERE (transaction_id, position) > ($1::text::xid8, $2)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AND type = ANY($4)"
    " ORDER BY events.transaction_id, events.position LIMIT $3"
)


async def read_index_order_baseline(url: str, types: list[str], budget: float) -> tuple[int, float]:
    """``read_after``'s query with its ORDER BY naming the table's columns (``events.transaction_id``),
    which the (transaction_id, position) index serves, instead of the xid8-cast-to-bigint output column
    of the same name, which it cannot: what reading the log costs when it does not sort it."""
    conn = await connect(url, SCHEMA)
    try:
        t = time.perf_counter()
        after, n = START, 0
        while time.perf_counter() - t < budget:
            async with conn.transaction():
                rows = await conn.fetch(
                    INDEX_ORDER_READ, str(after.transaction_id), after.position, 5000, types
                )
            batch = [to_recorded(row) for row in rows]
            if not batch:
                break
            n += len(batch)
            after = Checkpoint(batch[-1].transaction_id, batch[-1].position)
        return n, time.perf_counter() - t
    finally:
        await conn.close()


async def insert_select_baseline(pool: asyncpg.Pool, types: list[str]) -> tuple[int, float]:
    """The ledger's writes done inside the server: two postings per event, one INSERT ... SELECT."""
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE IF EXISTS bench_postings")
        await conn.execute("CREATE TABLE bench_postings (LIKE ledger_postings INCLUDING ALL)")
        t = time.perf_counter()
        status = await conn.execute(
            "INSERT INTO bench_postings (event_id, line, position, account, amount, recorded_at)"
            " SELECT event_id, g, position, 'user:' || (data->>'lenser_id') || ':available', 1, recorded_at"
            " FROM events CROSS JOIN generate_series(0, 1) AS g WHERE type = ANY($1)",
            types,
        )
        elapsed = time.perf_counter() - t
        await conn.execute("DROP TABLE bench_postings")
    return int(status.split()[-1]) // 2, elapsed


# --- report ---------------------------------------------------------------------------------------------

HEADER = """\
# Benchmarks

Generated by `make bench` (tests/bench/run.sh → tests/bench/wallet_bench.py, then
tests/bench/billing_bench.py for the last section, "Billing: deliveries to credits"). The file is
rewritten on every run: edit the templates in the scripts, not this file.

These machines are noisy and shared, so every figure stands beside a baseline measured **in the same
run, on the same server, with the same number of clients**, and the figure that matters is the ratio.
The CPU split of each phase shows how much of the machine something else was using meanwhile.

## How to reproduce

    make bench                       # about 7 minutes: scratch database, measurements, report, drop
    BENCH_SECONDS=3 make bench       # a quick pass (each measured phase 3 s instead of 10)
    BENCH_ONLY=wallet make bench     # only this wallet part (BENCH_ONLY=billing: only the last section)
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make bench   # the default server

`run.sh` creates a scratch database on `DATABASE_URL`'s server (local servers only), migrates the
wallet schema into it, runs every phase below from one Python process (it starts `pgbench` itself for
the baselines), drops the database and replaces this file if the run completed. It needs `psql` and
`pgbench` (postgresql-client) on the PATH. Other knobs: `BENCH_CLIENTS` (16), `BENCH_LATENCY_CLIENTS`
(200), `BENCH_WALLETS` (1000), `BENCH_BIG_EVENTS` (1000000), `BENCH_OPEN_RATE` (open-loop reserves/s;
default half of what one wallet sustained closed-loop, at most 100), `BENCH_REBUILD_SECONDS` (the
ledger rebuild's time budget, default 6 × BENCH_SECONDS; the inline projections and the read baseline
get a quarter of it each; 1200 lets every rebuild finish, in about a quarter of an hour).

## What is measured

* **Throughput.** `C` asyncio workers in one process share one asyncpg pool of size `C`
  (`lf_pg.create_pool`, schema `wallet`); each loops `Wallets.reserve` then `Wallets.capture`
  (1 credit, a fresh reference id each time) on a random one of 1,000 pre-granted wallets, then all
  on one hot wallet. Baseline: `pgbench -n -M prepared -c C -j 2 -T S` running
  `\\set id random(1, 1000)` + `UPDATE bench_counter SET n = n + 1 WHERE id = :id` on a 1,000-row
  table (many rows), and the same on `id = 1` (hot row). The issue's ratio is **pairs/s ÷ pgbench
  TPS** (one pair = two commands = two transactions); commands/s ÷ TPS is shown too. The async
  followers (ledger, outbox relay) are not running: this is the command path alone.
  `C = 16`: eight clients per core. pgbench's TPS still grows a little past 16 (about a quarter more
  at 32 on the reference machine) while the wallet's stops growing after a handful of clients (one
  Python process), so a larger `C` would only lower the wallet's ratio and a smaller one would starve
  the baseline; 16 also leaves room under `max_connections` (100) for everything else.
* **Latency.** 200 asyncio tasks on one wallet, through one pool of `C` connections (a pool of 200
  would need 200 server backends, over `max_connections`, and would only move the queue from the pool
  into the row lock). Each task times a `reserve` (`perf_counter_ns` around the call) and then releases
  it (not timed), so the wallet's open reservations, which its snapshot carries, stay bounded.
  *Closed loop*: each task goes again at once; latency is then mostly queueing for the wallet's row
  lock (Little's law). *Open loop*: reserves are due at a fixed rate spread over the 200 tasks and
  latency counts from when each was due (no coordinated omission), so it shows service time plus the
  queueing that rate causes. The rate is at most half of what one wallet sustained closed-loop: one
  wallet serialises its commands, and a rate such as 500/s, above what it can serve, would only measure
  a queue growing for the whole phase. Each measurement alternates between a wallet of 10 events (a
  fresh one each slice) and one of 1,000,000 events (built in SQL and checked before measuring, see
  below), so that the rest of the machine's load falls on both alike.
* **Rebuild.** `lf_projections.rebuild(conn, "wallet", LEDGER, follower_name="ledger")`, then each
  inline projection, over the whole log (the long wallet plus all the other phases wrote), within a
  time budget: when it runs out, the rebuild is stopped between batches and the rate is what it had
  committed. Baselines: the same reads through `read_after` applying nothing, the same read in index
  order, and the ledger's writes done by the server alone (`INSERT ... SELECT` of two postings per event).
* **CPU split**, in cores of the machine, for each phase: the client (this Python process, or pgbench),
  PostgreSQL (this database's backends, their parallel workers and the server's shared processes),
  other (anything else on the machine: on a shared box, other people's work) and idle; from /proc.
"""


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def render(r: dict[str, Any]) -> str:
    cfg = r["config"]
    out = [HEADER]
    out.append("## This run\n")
    out.append(f"* Date: {r['date']}")
    out.append(
        f"* Machine: {r['machine']['nproc']} cores ({r['machine']['cpu']}), {r['machine']['memory']},"
        f" {r['machine']['os']}"
    )
    out.append(
        f"* PostgreSQL: {r['machine']['pg']} (synchronous_commit={r['machine']['synchronous_commit']},"
        f" fsync={r['machine']['fsync']}, shared_buffers={r['machine']['shared_buffers']},"
        f" autovacuum={r['machine']['autovacuum']}); pgbench {r['machine']['pgbench']}"
    )
    out.append(f"* Python: {r['machine']['python']}, asyncpg {asyncpg.__version__}")
    out.append(
        f"* Settings: BENCH_SECONDS={cfg['seconds']}, C={cfg['clients']}, latency clients={cfg['latency_clients']},"
        f" wallets={cfg['wallets']}, long wallet={cfg['big_events']:,} events,"
        f" open-loop rate={fmt(cfg['open_rate'])}/s; total run {r['total_seconds']:.0f} s"
    )
    out.append("")

    # --- targets
    t = r["targets"]
    out.append("## Targets\n")
    out.append("| target | measured | verdict |")
    out.append("|---|---|---|")
    out.append(
        f"| many wallets: pairs/s ≥ 50% of pgbench TPS (many rows) | {t['many_ratio']:.3f} of TPS"
        f" ({t['many_ratio'] * 100:.1f}%) | {met(t['many_ratio'] >= 0.5)} |"
    )
    out.append(
        f"| {cfg['big_events']:,}-event wallet within 20% of the 10-event one: reserve p50, open loop |"
        f" {t['big_vs_small_p50']:.2f}× | {met(t['big_vs_small_p50'] <= 1.2)} |"
    )
    out.append(
        f"| … reserve p99, open loop | {t['big_vs_small_p99']:.2f}× | {met(t['big_vs_small_p99'] <= 1.2)} |"
    )
    out.append(
        f"| … closed loop: throughput, and p50 (queueing) | {t['big_vs_small_closed_rate']:.2f}×,"
        f" {t['big_vs_small_closed_p50']:.2f}× | "
        f"{met(t['big_vs_small_closed_rate'] >= 1 / 1.2 and t['big_vs_small_closed_p50'] <= 1.2)} |"
    )
    out.append(
        f"| p99 reserve latency < 20 ms at 200 clients, open loop ({fmt(cfg['open_rate'])}/s offered) |"
        f" {t['open_p99_worst']:.1f} ms | {met(t['open_p99_worst'] < 20)} |"
    )
    out.append(
        f"| p99 reserve latency < 20 ms at 200 clients, closed loop | {t['closed_p99_worst']:.1f} ms |"
        f" {met(t['closed_p99_worst'] < 20)} |"
    )
    out.append("")

    # --- throughput
    out.append("## Throughput: reserve + capture pairs\n")
    out.append(
        f"C = {cfg['clients']} clients, {cfg['seconds']} s each. CPU split in cores (of {r['machine']['nproc']}).\n"
    )
    out.append(
        "| workload | wallet pairs/s | commands/s | pgbench TPS (baseline) | pairs/s ÷ TPS | commands/s ÷ TPS |"
        " wallet CPU split | pgbench CPU split |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for key, name in (
        ("many", f"{cfg['wallets']:,} wallets / many rows"),
        ("hot", "one hot wallet / one row"),
    ):
        w, p = r["pairs"][key], r["pgbench"][key]
        out.append(
            f"| {name} | {fmt(w.pairs_per_s)} | {fmt(2 * w.pairs_per_s)} | {fmt(p.tps)} |"
            f" {ratio(w.pairs_per_s, p.tps)} | {ratio(2 * w.pairs_per_s, p.tps)} | {w.cpu.text()} | {p.cpu.text()} |"
        )
    pn = r["pgbench"]["many_notify"]
    out.append(
        f"\nDiagnostic baseline, same run: pgbench many rows **plus one `pg_notify`** per transaction (what the"
        f" `events_notify` trigger adds to every append): {fmt(pn.tps)} TPS = {ratio(pn.tps, r['pgbench']['many'].tps)}"
        f" of the plain UPDATE ({pn.cpu.text()}).\n"
    )

    # --- latency
    out.append("## Reserve latency at 200 clients, one wallet\n")
    out.append(
        "Milliseconds. Closed loop: latency is from the call. Open loop: from when the reserve was due"
        ' ("service" is from the call). CPU split in cores: client / PostgreSQL / other / idle.\n'
    )
    out.append(
        "| wallet | loop | events before | reserves/s | p50 | p90 | p99 | max | service p50 | service p99 |"
        " CPU split |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for res in r["latency"]:
        lat, srv = res.latency, res.service
        offered = f" (offered {res.offered_rate:.0f}/s)" if res.offered_rate else ""
        out.append(
            f"| {res.label} | {res.mode} | {res.wallet_events_before:,} | {res.rate:.0f}{offered} |"
            f" {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} |"
            f" {srv['p50']:.1f} | {srv['p99']:.1f} | {res.cpu.text()} |"
        )
    out.append("")
    out.append("Ratios, long wallet ÷ ten-event wallet (the baseline):\n")
    out.append("| loop | reserves/s | p50 | p99 |")
    out.append("|---|---|---|---|")
    for mode in ("closed", "open"):
        small, big = r["latency_pairs"][mode]
        out.append(
            f"| {mode} | {ratio(big.rate, small.rate)} | {ratio(big.latency['p50'], small.latency['p50'])} |"
            f" {ratio(big.latency['p99'], small.latency['p99'])} |"
        )
    out.append("")

    # --- long wallet checks + load cost
    v = r["verify"]
    out.append("### The long wallet\n")
    out.append(
        f"Built in SQL: `WalletOpened` + `CreditsDeposited` through the real repository, then"
        f" {cfg['big_events'] - 2:,} alternating `CreditsReserved` / `ReservationReleased` events by"
        f" `generate_series` ({r['build_seconds']:.0f} s), the matching `reservations` rows, and the `streams` row"
        f" set to version {cfg['big_events']:,} with the snapshot `Wallet.to_snapshot()` gives there. Checked before"
        " measuring: sample rows re-serialise identically through the domain event models; replaying the first"
        " 1,000 stored events through `Wallet.replay` gives the stored snapshot; `REPOSITORY.load` returns the"
        f" expected balance at version {cfg['big_events']:,}; `load_stream` returns 0 events after the snapshot;"
        f" plan of its events query: `{v['plan']}`.\n"
    )
    out.append("Cost of `REPOSITORY.load` (no lock, one connection, no concurrency), same run:\n")
    out.append(
        "| wallet | version | events replayed | open reservations in snapshot | load µs | of which fetch µs |"
    )
    out.append("|---|---|---|---|---|---|")
    for name, c in r["load_costs"].items():
        out.append(
            f"| {name} | {c['version']:,} | {c['replayed']} | {c['open']:,} | {c['load_us']:.0f} | {c['fetch_us']:.0f} |"
        )
    out.append("")
    s = r["statements"]
    out.append(
        f"Statements per command (each a client/server round trip), as an asyncpg query logger saw them:"
        f" reserve {s['reserve']}, capture {s['capture']}"
        + (f" ({s['resets']} of them the pool's reset query on release)" if s["resets"] else "")
        + ".\n"
    )
    for name in ("reserve", "capture"):
        out.append(f"<details><summary>{name}: {s[name]} statements</summary>\n")
        out.extend(f"{n}. `{short_sql(q)}`" for n, q in enumerate(s[f"{name}_list"], start=1))
        out.append("\n</details>\n")

    # --- rebuild
    out.append("## Projection rebuild\n")
    rb = r["rebuild"]
    base_read, base_ins = r["rebuild_baselines"]["read"], r["rebuild_baselines"]["insert_select"]
    out.append(
        f"Log: {r['log_events']:,} events. Budget: {cfg['rebuild_budget']:.0f} s for the ledger,"
        f" {cfg['rebuild_budget'] / 4:.0f} s for each inline projection and for the read baseline.\n"
    )
    out.append("| projection | events applied | seconds | events/s | complete | CPU split |")
    out.append("|---|---|---|---|---|---|")
    for res in rb:
        out.append(
            f"| {res.name} | {res.events:,} | {res.seconds:.1f} | {fmt(res.per_s)} |"
            f" {'yes' if res.complete else 'no (budget)'} | {res.cpu.text()} |"
        )
    out.append("")
    ledger = rb[0]
    out.append("| baseline | events | seconds | events/s | ledger rebuild ÷ baseline |")
    out.append("|---|---|---|---|---|")
    out.append(
        f"| read the ledger's events via `read_after` (5,000 a batch), apply nothing | {base_read[0]:,} |"
        f" {base_read[1]:.1f} | {fmt(base_read[0] / base_read[1])} | {ratio(ledger.per_s, base_read[0] / base_read[1])} |"
    )
    base_idx = r["rebuild_baselines"]["read_index_order"]
    out.append(
        f"| the same read ordered by the table's columns (`ORDER BY events.transaction_id, events.position`:"
        f" an index scan, no sort) | {base_idx[0]:,} | {base_idx[1]:.1f} | {fmt(base_idx[0] / base_idx[1])} |"
        f" {ratio(ledger.per_s, base_idx[0] / base_idx[1])} |"
    )
    out.append(
        f"| server-side `INSERT ... SELECT` of the ledger's postings (2 per event) | {base_ins[0]:,} |"
        f" {base_ins[1]:.1f} | {fmt(base_ins[0] / base_ins[1])} | {ratio(ledger.per_s, base_ins[0] / base_ins[1])} |"
    )
    out.append("")
    out.append(r["analysis"])
    return "\n".join(out) + "\n"


# --- main --------------------------------------------------------------------------------------------


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
    for name in ("synchronous_commit", "fsync", "shared_buffers", "autovacuum", "max_connections"):
        facts[name] = await admin.fetchval(f"SHOW {name}")
    facts["pgbench"] = subprocess.run(
        ["pgbench", "--version"], capture_output=True, text=True
    ).stdout.split()[-1]
    return facts


async def main(url: str, out_path: Path) -> None:
    started = time.perf_counter()
    check_local(url)
    DB["name"] = urlsplit(url).path.lstrip("/")
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not on PATH (apt-get install postgresql-client)")
    seconds = env_int("BENCH_SECONDS", 10)
    clients = env_int("BENCH_CLIENTS", 16)
    latency_clients = env_int("BENCH_LATENCY_CLIENTS", 200)
    n_wallets = env_int("BENCH_WALLETS", 1000)
    big_events = env_int("BENCH_BIG_EVENTS", 1_000_000) // 2 * 2
    rebuild_budget = env_float("BENCH_REBUILD_SECONDS", 6 * seconds)
    warmup = max(1.0, seconds / 5)
    r: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}

    admin = await asyncpg.connect(url)
    workdir = Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    try:
        r["machine"] = await machine_facts(admin)
        log(f"machine: {r['machine']}")
        await migrate(url, SCHEMA, MIGRATIONS)
        await pgbench_setup(admin)
        pool = await create_pool(url, SCHEMA, min_size=clients, max_size=clients)
        wallets = Wallets(pool)

        # --- setup: the long wallet, the many wallets
        t = time.perf_counter()
        big_id, big_snapshot = await build_big_wallet(pool, big_events)
        r["build_seconds"] = time.perf_counter() - t
        r["verify"] = await verify_big_wallet(pool, big_id, big_snapshot, big_events)
        many = await gather_limited(clients, (new_wallet(wallets) for _ in range(n_wallets)))
        hot = await new_wallet(wallets)
        # autovacuum may be off (it is on the reference machine): statistics and visibility by hand,
        # and a checkpoint, so that no phase pays for the bulk load.
        await admin.execute("VACUUM ANALYZE")
        await admin.execute("CHECKPOINT")
        log(f"setup done in {time.perf_counter() - started:.0f}s")

        # --- throughput, each beside its baseline
        r["pgbench"], r["pairs"] = {}, {}
        r["pgbench"]["many"] = await run_pgbench(admin, url, "many", clients, seconds, workdir)
        r["pairs"]["many"] = await pairs_phase(wallets, many, clients, seconds, "many", warmup=warmup)
        r["pgbench"]["hot"] = await run_pgbench(admin, url, "hot", clients, seconds, workdir)
        r["pairs"]["hot"] = await pairs_phase(wallets, [hot], clients, seconds, "hot", warmup=warmup)
        r["pgbench"]["many_notify"] = await run_pgbench(admin, url, "many_notify", clients, seconds, workdir)

        # --- what one command costs
        r["statements"] = await statements_per_command(url)
        small = await ten_event_wallet(wallets)
        replaying = await new_wallet(wallets)  # snapshot + 49 events, the most a load replays
        while True:
            res, _ = await wallets.reserve(replaying, 1, f"warm-{uuid4().hex}", metadata=META)
            if (
                await stream_version(pool, replaying)
            ) % REPOSITORY.snapshot_every == REPOSITORY.snapshot_every - 1:
                break
            await wallets.capture(res.reservation_id, 1, metadata=META)
        holding = await new_wallet(wallets)  # 1,000 open reservations in its snapshot
        for _ in range(1000):
            await wallets.reserve(holding, 1, f"hold-{uuid4().hex}", metadata=META)
        while (await stream_version(pool, holding)) % REPOSITORY.snapshot_every:
            res, _ = await wallets.reserve(holding, 1, f"hold-{uuid4().hex}", metadata=META)
        r["load_costs"] = {
            "10 events, no snapshot": await load_cost(pool, small),
            f"{big_events:,} events (snapshot, nothing after)": await load_cost(pool, big_id),
            f"snapshot + {REPOSITORY.snapshot_every - 1} events (worst case, snapshot_every={REPOSITORY.snapshot_every})": await load_cost(
                pool, replaying
            ),
            "snapshot holding 1,000 open reservations": await load_cost(pool, holding),
        }
        for name, c in r["load_costs"].items():
            log(f"load {name}: {c}")

        # --- latency: closed loop, then open loop at a rate one wallet can sustain
        open_slice = 1.0
        n_small = 2 + max(1, round(seconds / open_slice))
        small_ids = list(await gather_limited(clients, (ten_event_wallet(wallets) for _ in range(n_small))))
        closed_small, closed_big = await latency_pair(
            wallets,
            small_ids,
            big_id,
            f"{big_events:,} events",
            latency_clients,
            seconds,
            rate=None,
            slice_seconds=seconds / 2,
        )
        open_rate = env_float("BENCH_OPEN_RATE", 0) or min(100.0, max(10.0, closed_small.rate // 20 * 10))
        open_small, open_big = await latency_pair(
            wallets,
            small_ids,
            big_id,
            f"{big_events:,} events",
            latency_clients,
            seconds,
            rate=open_rate,
            slice_seconds=open_slice,
        )
        r["latency"] = [closed_small, closed_big, open_small, open_big]
        r["latency_pairs"] = {"closed": (closed_small, closed_big), "open": (open_small, open_big)}
        await pool.close()

        # --- rebuild
        await admin.execute("VACUUM ANALYZE")
        await admin.execute("CHECKPOINT")
        r["log_events"] = await admin.fetchval(f"SELECT count(*) FROM {SCHEMA}.events")
        r["notify_trigger"] = await admin.fetchval(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = 'events' AND NOT t.tgisinternal"
            " AND pg_get_triggerdef(t.oid) ILIKE '%notify%'",
            SCHEMA,
        )
        pool = await create_pool(url, SCHEMA, min_size=1, max_size=2)
        r["rebuild_baselines"] = {
            "read": await read_baseline(url, LEDGER.types, 10**9, rebuild_budget / 4),
            "read_index_order": await read_index_order_baseline(url, LEDGER.types, rebuild_budget / 4),
            "insert_select": await insert_select_baseline(pool, LEDGER.types),
        }
        log(f"rebuild baselines: {r['rebuild_baselines']}")
        await pool.close()
        r["rebuild"] = [await rebuild_one(url, LEDGER, rebuild_budget, "ledger")]
        for projection in INLINE:
            r["rebuild"].append(await rebuild_one(url, projection, rebuild_budget / 4, None))

        r["config"] = {
            "seconds": seconds,
            "clients": clients,
            "latency_clients": latency_clients,
            "wallets": n_wallets,
            "big_events": big_events,
            "open_rate": open_rate,
            "rebuild_budget": rebuild_budget,
        }
        r["targets"] = {
            "many_ratio": r["pairs"]["many"].pairs_per_s / r["pgbench"]["many"].tps,
            "big_vs_small_p50": open_big.latency["p50"] / open_small.latency["p50"],
            "big_vs_small_p99": open_big.latency["p99"] / open_small.latency["p99"],
            "big_vs_small_closed_rate": closed_big.rate / closed_small.rate,
            "big_vs_small_closed_p50": closed_big.latency["p50"] / closed_small.latency["p50"],
            "open_p99_worst": max(open_big.latency["p99"], open_small.latency["p99"]),
            "closed_p99_worst": max(closed_big.latency["p99"], closed_small.latency["p99"]),
        }
        r["total_seconds"] = time.perf_counter() - started
        r["analysis"] = analysis(r)
        out_path.write_text(render(r))
        log(f"report written to {out_path} ({r['total_seconds']:.0f}s in all)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            await admin.execute(f"DROP TABLE IF EXISTS public.{PGBENCH_TABLE}")
        await admin.close()


def analysis(r: dict[str, Any]) -> str:
    """The reading of this run's figures: the arithmetic is redone on every run, the reasoning is fixed."""
    cfg, pg, pairs, st = r["config"], r["pgbench"], r["pairs"], r["statements"]
    many, hot, pg_many, pg_hot = pairs["many"], pairs["hot"], pg["many"], pg["hot"]
    per_pair_statements = st["reserve"] + st["capture"]
    lines = ["## Analysis", ""]

    # Throughput, many wallets.
    c_ms = many.cpu.client / many.pairs_per_s * 1000
    lines.append(
        f"**Many wallets: {many.pairs_per_s:,.0f} pairs/s = {many.pairs_per_s / pg_many.tps:.3f} of pgbench's"
        f" {pg_many.tps:,.0f} TPS; "
        + (
            "the target (0.5) is met."
            if many.pairs_per_s / pg_many.tps >= 0.5
            else f"the target (0.5) is missed by a factor of {0.5 / (many.pairs_per_s / pg_many.tps):.0f}."
        )
        + "** The baseline's transaction is one statement; a pair is"
        f" two transactions of {st['reserve']} and {st['capture']} statements ({per_pair_statements} client/server"
        " round trips, listed above)."
        f" The client spent {c_ms:.2f} ms of CPU per pair ({many.cpu.client:.2f} cores: one Python process"
        " cannot use more than one)."
    )
    if many.cpu.postgres and pg_many.cpu.postgres:
        pg_pair = many.cpu.postgres / many.pairs_per_s * 1000
        pg_tx = pg_many.cpu.postgres / pg_many.tps * 1000
        lines[-1] += (
            f" PostgreSQL spent {pg_pair:.2f} ms of CPU per pair against {pg_tx:.3f} ms per pgbench transaction"
            f" ({pg_pair / pg_tx:.0f}x): for the same PostgreSQL CPU the ratio cannot exceed about"
            f" {pg_tx / pg_pair:.2f}, however cheap the client. The target compares a {per_pair_statements}-statement"
            " unit of work with a 1-statement one; no tuning of the Python side can reach it, only far fewer"
            " statements per command could (see the findings below). Client and server together spent"
            f" {c_ms + pg_pair:.2f} ms of CPU per pair, so even with this machine's {many.cpu.cores} cores to"
            f" themselves they could not pass about {many.cpu.cores * 1000 / (c_ms + pg_pair):,.0f} pairs/s"
            f" (this run: {many.pairs_per_s:,.0f}, with {fmt(many.cpu.machine and many.cpu.machine - many.cpu.client - many.cpu.postgres, 2)}"
            " cores taken by other work on the machine)."
        )
    lines.append("")

    # Hot wallet.
    hold = 1000 / (2 * hot.pairs_per_s)
    lines.append(
        f"**One hot wallet: {hot.pairs_per_s:,.0f} pairs/s = {hot.pairs_per_s / pg_hot.tps:.3f} of pgbench's hot-row"
        f" {pg_hot.tps:,.0f} TPS.** Every command on a wallet queues on its `streams` row lock (DESIGN §3), held from"
        f" the `SELECT ... FOR UPDATE` through replay, decision, append, inline projections and the commit's WAL"
        f" flush: about {hold:.1f} ms per command here ({2 * hot.pairs_per_s:,.0f} commands/s, one at a time), against"
        f" {1000 / pg_hot.tps:.2f} ms for pgbench's one-statement hot-row transaction. The client used"
        f" {hot.cpu.client:.2f} cores and PostgreSQL {fmt(hot.cpu.postgres, 2)}, neither a whole core: the bound is"
        " the serial chain of round trips and the replay (see below) under the lock, each step of which also"
        " waits its turn for a CPU when the machine is busy."
    )
    lines.append("")

    # Latency.
    cs, cb = r["latency_pairs"]["closed"]
    os_, ob = r["latency_pairs"]["open"]
    cycle = cfg["latency_clients"] / cs.rate * 1000
    open_p99 = max(os_.latency["p99"], ob.latency["p99"])
    lines.append(
        f"**Latency.** Closed loop, {cfg['latency_clients']} clients on one wallet sustain {cs.rate:.0f} reserves/s, each"
        f" followed by a release: {2 * cs.rate:.0f} commands/s, one at a time on the row lock. By Little's law a"
        f" client's cycle (reserve + release) takes {cfg['latency_clients']} / {cs.rate:.0f} s = {cycle:.0f} ms; the"
        f" reserve's part of it measured mean {cs.latency['mean']:.0f} ms, p50 {cs.latency['p50']:.0f} ms."
        " Closed-loop latency at"
        f" {cfg['latency_clients']} clients on one wallet is queueing: each reserve waits for the commands ahead of it,"
        f" so a p99 under 20 ms would need every command to hold the wallet's lock for under"
        f" {20 / cfg['latency_clients'] * 1000:.0f} µs (it holds it for about {1000 / (2 * cs.rate):.1f} ms)."
        f" Open loop at {cfg['open_rate']:.0f} reserves/s (at most half of what the wallet sustains): p50"
        f" {os_.latency['p50']:.1f} / p99 {os_.latency['p99']:.1f} ms on the ten-event wallet,"
        f" {ob.latency['p50']:.1f} / {ob.latency['p99']:.1f} ms on the long one"
        + (
            ": under 20 ms, the service time of a reserve plus a little queueing."
            if open_p99 < 20
            else f", p99 over 20 ms: with {2 * cfg['open_rate']:.0f} commands/s on the lock, a burst of arrivals or of"
            " other load on the machine queues behind commands that each hold the lock for milliseconds."
        )
        + f" The {cfg['big_events']:,}-event wallet costs what the ten-event one does (open-loop p50 ratio"
        f" {ob.latency['p50'] / os_.latency['p50']:.2f}, closed-loop throughput ratio {cb.rate / cs.rate:.2f}, load"
        " times in the table above): loads start from the snapshot, and `load_stream`'s query reads only the"
        " `(stream_id, version)` index range after it. On this shared machine p99 and its ratios move by more"
        ' than 20% from run to run with whatever else is running (the "other" CPU column); p50 is the stable'
        " comparison."
    )
    lines.append("")

    # Rebuild.
    ledger = r["rebuild"][0]
    read_n, read_s = r["rebuild_baselines"]["read"]
    idx_n, idx_s = r["rebuild_baselines"]["read_index_order"]
    ins_n, ins_s = r["rebuild_baselines"]["insert_select"]
    read_share = min(1.0, ledger.per_s / (read_n / read_s))
    eta = r["log_events"] / ledger.per_s
    status = (
        "complete"
        if ledger.complete
        else f"stopped at its {cfg['rebuild_budget']:.0f} s budget; at this rate the whole log would take"
        f" about {eta / 60:.0f} min"
    )
    lines.append(
        f"**Rebuild: {ledger.per_s:,.0f} events/s** for the ledger ({status}). Reading alone"
        f" through `read_after` runs at {read_n / read_s:,.0f} events/s, i.e. about {read_share:.0%} of the rebuild's"
        f" time is spent reading; the same query ordered by the table's columns reads {idx_n / idx_s:,.0f} events/s,"
        f" and the server writes the ledger's postings for {ins_n / ins_s:,.0f} events/s by itself. The rest is"
        + (
            " building and writing each batch's rows (two statements a batch, see below)."
            if getattr(LEDGER, "batch", None) is not None
            else " one round trip (or two) per event in the projection handlers."
        )
        + (
            f" The machine was {ledger.cpu.cores - ledger.cpu.machine:.2f} cores idle during the ledger rebuild:"
            " it runs on one connection, one batch after the other, with the client and the server taking turns."
            if ledger.cpu.machine is not None and ledger.cpu.cores - ledger.cpu.machine > 0.3
            else ""
        )
    )
    lines.append("")
    lines.append(findings(r))
    return "\n".join(lines)


def findings(r: dict[str, Any]) -> str:
    """Costs this run points at in the code, each with where it comes from. Written from the measurements
    (and skipped when a measurement shows the problem gone), since the code moves under the benchmark."""
    st, costs, every = r["statements"], list(r["load_costs"].values()), REPOSITORY.snapshot_every
    many, pg_many = r["pairs"]["many"], r["pgbench"]["many"]
    ledger = r["rebuild"][0]
    read_n, read_s = r["rebuild_baselines"]["read"]
    idx_n, idx_s = r["rebuild_baselines"]["read_index_order"]
    ins_n, ins_s = r["rebuild_baselines"]["insert_select"]
    items = []
    items.append(
        f"**Round trips per command: {st['reserve']} for a reserve, {st['capture']} for a capture** (listed above;"
        " application/commands.py `Wallets._run` and the decisions, lf_eventstore store.py `load_stream`/`append`,"
        " one statement per inline-projection handler in projections/). Each is a socket write and read plus"
        " event-loop work in the client and a Bind/Execute in the server, which is what the throughput ratio"
        " measures against pgbench's one statement."
        + (
            f" {st['resets']} of them are the pool's reset query on release (asyncpg's default, lf_pg/pool.py)."
            if st["resets"]
            else ""
        )
    )
    items.append(
        f'**Replay of up to {every - 1} events inside the row lock** (`AggregateRepository(Wallet, "wallet",'
        f" snapshot_every={every})`, application/commands.py): each event costs a row decode, two `json.loads`"
        " (data and metadata, lf_pg/pool.py's codec), a `RecordedEvent`, a pydantic `model_validate` and `_apply`"
        " (four `strftime` calls for a capture, domain/wallet.py). A load measured"
        f" {costs[1]['load_us']:.0f} µs with nothing after the snapshot and {costs[2]['load_us']:.0f} µs with"
        f" {costs[2]['replayed']} events after it; a busy wallet replays {(every - 1) / 2:.1f} on average, on a hot"
        " wallet while every other command waits."
    )
    items.append(
        "**Snapshots carry every open reservation** (domain/wallet.py `to_snapshot`/`from_snapshot`): decoding is"
        " O(open reservations) on every command, encoding (sorted-keys JSON) on every snapshot; with"
        f" {costs[3]['open']:,} open a load took {costs[3]['load_us']:,.0f} µs against {costs[1]['load_us']:.0f}."
    )
    if r.get("notify_trigger"):
        ratio_notify = r["pgbench"]["many_notify"].tps / pg_many.tps
        items.append(
            "**`pg_notify` on every append** (lf_eventstore migrations/0001_events.sql, `events_notify`): at commit"
            " PostgreSQL serialises every notifying transaction of the whole cluster on one lock held through the"
            " commit record's flush, so they no longer share WAL flushes (group commit). pgbench with one"
            f" `pg_notify` per transaction ran at {ratio_notify:.2f} of the plain UPDATE's TPS, i.e."
            f" {r['pgbench']['many_notify'].tps:,.0f} appending transactions/s for all services together on this"
            f" server; the wallet ran {2 * many.pairs_per_s:,.0f} commands/s here"
            + (
                ", below that ceiling."
                if 2 * many.pairs_per_s < 0.8 * r["pgbench"]["many_notify"].tps
                else ", near it."
            )
        )
    if getattr(LEDGER, "batch", None) is not None:
        items.append(
            "**The ledger takes a batch at once** (its `batch` handler, wallet_api/projections/ledger.py: the"
            " batch's postings and transactions in two statements), while the inline projections still apply one"
            " event per statement (lf_projections/projection.py `Projection.apply`):"
            f" the ledger rebuild applied {ledger.per_s:,.0f} events/s where the server writes the same postings for"
            f" {ins_n / ins_s:,.0f} events/s in one `INSERT ... SELECT`; the rest of its time is reading and decoding"
            " the log (the read baseline above) and building the rows in Python."
        )
    else:
        items.append(
            "**Projections apply one event per statement** (lf_projections/projection.py `Projection.apply` calls"
            " one handler per event; the ledger's `record` makes an `executemany` per event, plus an `execute` when the"
            " balance moved):"
            f" the ledger rebuild applied {ledger.per_s:,.0f} events/s where the server writes the same postings for"
            f" {ins_n / ins_s:,.0f} events/s in one `INSERT ... SELECT` — batching per batch (one executemany or a"
            " COPY into the shadow tables) is the headroom."
        )
    if read_n / read_s < 0.5 * (idx_n / idx_s):
        items.append(
            "**`read_after` sorts the rest of the log on every batch** (libs/eventstore/src/lf_eventstore/reader.py):"
            " its `ORDER BY transaction_id, position` names the select list's `transaction_id::text::bigint AS"
            " transaction_id`, which no index provides, so each batch is a scan and external sort of everything"
            f" after the checkpoint: {read_n / read_s:,.0f} events/s against {idx_n / idx_s:,.0f} for the same query"
            " ordered by `events.transaction_id, events.position`. A rebuild, or a follower with a backlog, is"
            " then quadratic in the log's length."
        )
    else:
        items.append(
            f"(`read_after` reads in index order: {read_n / read_s:,.0f} events/s, as the index-order baseline"
            f" {idx_n / idx_s:,.0f}; before commit 12e6f9a its ORDER BY named the bigint alias of"
            " `transaction_id` and every batch sorted the rest of the log.)"
        )
    body = "\n".join(f"{n}. {text}" for n, text in enumerate(items, start=1))
    return "### Findings: where the time goes in the code\n\n" + body + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--out", default="docs/benchmarks.md", type=Path)
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("--database-url or BENCH_DATABASE_URL: a scratch database (run.sh makes one)")
    asyncio.run(main(args.database_url, args.out))
