# ruff: noqa: ASYNC240 - the report is written once, at the end
"""execution-proxy benchmark (``make bench``): what a gateway adds to a call to a provider that answers at
once, ours beside LiteLLM's proxy, in one run on one machine.

Run by ``tests/bench/run.sh`` after the billing benchmark: it writes the "Execution: added latency"
section of the report (between the markers of execution_report.py). On its own:

    uv run python tests/bench/execution_bench.py --out tests/bench/out/execution.md
    uv run python tests/bench/execution_bench.py --splice-into tests/bench/out/benchmarks.md
    BENCH_ONLY=execution make bench     # the same through run.sh

Processes, each on a free port of 127.0.0.1: a fake OpenAI (lf_testing.fakes.openai, answering at
once), LiteLLM's proxy in its own venv (tests/bench/litellm/setup.sh) in front of it, and, when
execution-proxy serves (execution_system.SERVICE), wallet-api and execution-proxy on a scratch
database and RabbitMQ vhost. This process is the client.

Nothing here is a test: a missed target is reported, not failed.

Environment (all optional):
    BENCH_SECONDS                 the longest a sequential phase runs (default 10)
    BENCH_EXECUTION_REQUESTS      requests of a sequential phase (2000), if BENCH_SECONDS allows
    BENCH_EXECUTION_SECONDS       length of a concurrent phase (BENCH_SECONDS / 2, at least 3)
    BENCH_EXECUTION_CLIENTS       clients of the concurrent phases (8)
    BENCH_EXECUTION_REPEATS       each phase this many times, in alternating order (3)
    BENCH_EXECUTION_LENSERS       lensers the requests to our routes cycle over (1000: the credit
                                  routes allow 100 requests a minute per user)
    BENCH_EXECUTION_OURS          0: leave execution-proxy out even if it is there
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from common import check_local, env_int, logger
from cpu import CpuMeter
from execution_load import Phase, Target, run_phase
from execution_report import render, splice
from execution_system import (
    LITELLM_CONFIG,
    LITELLM_ENV,
    LITELLM_MASTER_KEY,
    REPO,
    SERVICE,
    OurStack,
    Process,
    litellm_version,
    openai_body,
    start_fake,
    start_litellm,
    start_ours,
)
from report import machine_facts

from lf_testing import infra

log = logger("execution-bench")
JSON = {"Content-Type": "application/json"}
LOGS = REPO / "tests/bench/out"


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def targets(fake: Process, litellm: Process, ours: OurStack | None) -> list[Target]:
    """Every call the run makes, the baselines first: the same request body (OpenAI's) to the fake and
    through LiteLLM; our routes with their own bodies, cycling over the lensers."""
    litellm_headers = JSON | {"Authorization": f"Bearer {LITELLM_MASTER_KEY}"}
    fake_url, proxy_url = f"{fake.url}/v1/chat/completions", f"{litellm.url}/v1/chat/completions"
    found = [
        Target("direct", "direct to the fake", fake_url, ((JSON, encode(openai_body())),)),
        Target(
            "litellm", "LiteLLM proxy", proxy_url, ((litellm_headers, encode(openai_body())),), via="litellm"
        ),
        Target(
            "direct-stream",
            "direct to the fake, stream",
            fake_url,
            ((JSON, encode(openai_body(stream=True))),),
            "ttft",
        ),
        Target(
            "litellm-stream",
            "LiteLLM proxy, stream",
            proxy_url,
            ((litellm_headers, encode(openai_body(stream=True))),),
            "ttft",
            "litellm",
        ),
    ]
    if ours is None or "all" in ours.missing:
        return found
    url, lensers = ours.proxy.url, ours.lensers
    ours_targets = [
        Target(
            "byok",
            SERVICE.byok,
            url + SERVICE.byok,
            tuple((x.headers, encode(SERVICE.body(x, byok=True))) for x in lensers),
            via="ours",
        ),
        Target(
            "wallet",
            SERVICE.wallet,
            url + SERVICE.wallet,
            tuple((x.headers, encode(SERVICE.body(x))) for x in lensers),
            via="ours",
        ),
        Target(
            "openai",
            SERVICE.openai,
            url + SERVICE.openai,
            tuple((x.headers, encode(openai_body())) for x in lensers),
            via="ours",
        ),
        Target(
            "stream",
            SERVICE.stream,
            url + SERVICE.stream,
            tuple((x.headers, encode(SERVICE.body(x))) for x in lensers),
            "sse",
            "ours",
        ),
    ]
    routes = {SERVICE.byok, SERVICE.wallet, SERVICE.openai, SERVICE.stream}
    assert {t.label for t in ours_targets} == routes
    return found + [t for t in ours_targets if t.label not in ours.missing]


async def facts() -> dict[str, str]:
    """The machine; PostgreSQL's version too when the local server answers (it is not needed until
    execution-proxy runs)."""
    try:
        admin = await asyncpg.connect(os.environ["DATABASE_URL"], timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return {"nproc": str(os.cpu_count()), "python": platform.python_version(), "os": platform.platform()}
    try:
        return await machine_facts(admin, ())
    finally:
        await admin.close()


async def main(out: Path | None, splice_into: Path | None) -> None:
    started = time.perf_counter()
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    os.environ.setdefault("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    check_local(os.environ["DATABASE_URL"])
    check_local(os.environ["AMQP_URL"])
    seconds = env_int("BENCH_SECONDS", 10)
    config = {
        "requests": env_int("BENCH_EXECUTION_REQUESTS", 2000),
        "seq_seconds": seconds,
        "conc_seconds": max(3, env_int("BENCH_EXECUTION_SECONDS", seconds // 2)),
        "clients": env_int("BENCH_EXECUTION_CLIENTS", 8),
        "repeats": env_int("BENCH_EXECUTION_REPEATS", 3),
        "lensers": env_int("BENCH_EXECUTION_LENSERS", 1000),
        "warmup": 200,
    }
    with_ours = os.environ.get("BENCH_EXECUTION_OURS", "1").strip() != "0"
    r: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "config": config,
        "machine": await facts(),
        "litellm_env": LITELLM_ENV,
        "litellm_config": LITELLM_CONFIG.read_text(),
    }
    LOGS.mkdir(parents=True, exist_ok=True)
    fake: Process | None = None
    litellm: Process | None = None
    ours: OurStack | None = None
    try:
        fake, r["fake"] = await start_fake()
        litellm = await start_litellm(fake.url, LOGS / "execution-litellm.log")
        r["litellm"] = {"version": litellm_version(), "startup_seconds": litellm.startup_seconds}
        if with_ours:
            ours = await start_ours(fake.url, config["lensers"], LOGS / "execution-services.log")
        r["ours"] = (
            None
            if ours is None
            else {
                "startup_seconds": ours.startup_seconds,
                "missing": ours.missing,
                "lensers": len(ours.lensers),
            }
        )
        pids = {"fake": fake.pids, "litellm": litellm.pids}
        groups = ("client", "fake", "litellm")
        dbname = ""
        if ours is not None and "all" not in ours.missing:
            assert ours.proxy.process is not None and ours.wallet.process is not None
            pids |= {"execution": {ours.proxy.process.pid}, "wallet": {ours.wallet.process.pid}}
            groups += ("execution", "wallet", "pg", "rabbitmq")
            dbname = ours.database_url.rsplit("/", 1)[-1]
        meter = CpuMeter(dbname, groups=groups, pids=pids, poll=False)
        found = targets(fake, litellm, ours)
        r["targets"] = [{"key": t.key, "label": t.label, "mode": t.mode, "via": t.via} for t in found]
        phases: list[Phase] = []
        clients = config["clients"]
        connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for repeat in range(config["repeats"]):
                order = found if repeat % 2 == 0 else list(reversed(found))
                for target in order:
                    phases.append(
                        await run_phase(
                            http,
                            target,
                            Phase(target.key, "sequential", 1, repeat),
                            meter,
                            requests=config["requests"],
                            seconds=config["seq_seconds"],
                            warmup=config["warmup"],
                        )
                    )
                for target in order:
                    if target.mode != "call":
                        continue  # streams: time to first token, sequential only
                    phases.append(
                        await run_phase(
                            http,
                            target,
                            Phase(target.key, "concurrent", clients, repeat),
                            meter,
                            requests=10**9,
                            seconds=config["conc_seconds"],
                            warmup=config["warmup"],
                        )
                    )
        r["phases"] = phases
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
        if ours is not None:
            ours.stop()
            with contextlib.suppress(Exception):
                await infra.drop_database(ours.database_url)
            with contextlib.suppress(Exception):
                await infra.delete_vhost(ours.amqp_url)
        for process in (litellm, fake):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="write the section (with its markers) to this file")
    parser.add_argument("--splice-into", type=Path, help="replace the section in this file (or append it)")
    args = parser.parse_args()
    if args.out is None and args.splice_into is None:
        raise SystemExit("--out FILE or --splice-into FILE (e.g. tests/bench/out/benchmarks.md)")
    asyncio.run(main(args.out, args.splice_into))
