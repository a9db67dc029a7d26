# ruff: noqa: ASYNC240 - small /proc reads
"""billing-webhook benchmark (``make bench``): signed deliveries to wallet credits, beside /health.

Run by ``tests/bench/run.sh`` after the wallet benchmark: it writes the "Billing: deliveries to
credits" section of the report (between the markers ``BEGIN``/``END`` in billing_report.py), which
run.sh appends to the wallet report. On its own it replaces that section in an existing file:

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
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import structlog
from billing_costs import model_for_cost, statements_per_step, time_wait_to
from billing_load import SECRET, DeliveryMaker, Phase, run_phase
from billing_profile import profile_phases, pyspy_binary
from billing_report import render, splice
from billing_system import (
    PLATFORM_KEY,
    WALLET_QUEUE,
    AcceptOnlyProcess,
    create_sessions,
    credit_timings,
    drain,
    healthy,
    integrity,
    rabbitmq_version,
    recorded_count,
)
from common import check_local, env_float, env_int, logger
from cpu import CpuMeter
from report import machine_facts

from billing_webhook.app import MIGRATIONS as BILLING_MIGRATIONS
from billing_webhook.app import SCHEMA as BILLING_SCHEMA
from lf_pg import migrate
from lf_testing import infra
from lf_testing.fakes.lemonsqueezy import FakeLemonSqueezy
from lf_testing.processes import Gateway, ServiceProcess
from lf_testing.waiting import queue_declared
from wallet_api.app import MIGRATIONS as WALLET_MIGRATIONS
from wallet_api.app import SCHEMA as WALLET_SCHEMA

log = logger("billing-bench")


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
        r["machine"] = await machine_facts(admin, ("synchronous_commit", "fsync")) | {
            "rabbitmq": await rabbitmq_version()
        }
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
        meter = CpuMeter(dbname, pids=pids, loop_pid=billing.process.pid)
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
