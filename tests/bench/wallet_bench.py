# ruff: noqa: E501, ASYNC240 - long lines, small file reads
"""wallet-api benchmarks (``make bench``): throughput, latency and rebuild, each beside a baseline.

Run through ``tests/bench/run.sh``, which creates a scratch database, runs this against it, drops it
and puts the report in tests/bench/out/benchmarks.md (docs/benchmarks.md with UPDATE_DOCS=1). It can
also run on its own:

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
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg
from common import check_local, env_float, env_int, logger
from pgbench import PGBENCH_TABLE, pgbench_setup, pgbench_version, run_pgbench
from report import machine_facts
from wallet_app import (
    DB,
    INLINE,
    LEDGER,
    MIGRATIONS,
    REPOSITORY,
    SCHEMA,
    capture,
    reserve,
    wallets_on,
)
from wallet_costs import load_cost, statements_per_command
from wallet_http import http_reserve_phase, in_process_reserve
from wallet_load import (
    gather_limited,
    latency_pair,
    new_wallet,
    pairs_phase,
    stream_version,
    ten_event_wallet,
)
from wallet_long import build_big_wallet, verify_big_wallet
from wallet_ratelimit import rate_limit_phase
from wallet_rebuild import insert_select_baseline, read_baseline, read_index_order_baseline, rebuild_one
from wallet_report import analysis, render

from lf_pg import create_pool, migrate

log = logger("bench")
# The server settings the report states beside the machine.
PG_SETTINGS = ("synchronous_commit", "fsync", "shared_buffers", "autovacuum", "max_connections")


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
        r["machine"] = await machine_facts(admin, PG_SETTINGS) | {"pgbench": pgbench_version()}
        log(f"machine: {r['machine']}")
        await migrate(url, SCHEMA, MIGRATIONS)
        await pgbench_setup(admin)
        pool = await create_pool(url, SCHEMA, min_size=clients, max_size=clients)
        wallets = wallets_on(pool)

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
            res, _ = await reserve(wallets, replaying, 1, f"warm-{uuid4().hex}")
            if (
                await stream_version(pool, replaying)
            ) % REPOSITORY.snapshot_every == REPOSITORY.snapshot_every - 1:
                break
            await capture(wallets, res.reservation_id, 1)
        holding = await new_wallet(wallets)  # 1,000 open reservations in its snapshot
        for _ in range(1000):
            await reserve(wallets, holding, 1, f"hold-{uuid4().hex}")
        while (await stream_version(pool, holding)) % REPOSITORY.snapshot_every:
            res, _ = await reserve(wallets, holding, 1, f"hold-{uuid4().hex}")
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

        # --- a rate-limit admission with and without the WAL flush
        r["rate_limit"] = await rate_limit_phase(pool, clients, seconds)
        r["in_process_reserve"] = await in_process_reserve(wallets, max(1.0, seconds / 2))
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

        # --- the internal HTTP reserve through a wallet-api process (its own database and vhost)
        r["http_reserve"] = await http_reserve_phase(seconds, warmup)

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
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(render(r))
        log(f"report written to {out_path} ({r['total_seconds']:.0f}s in all)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            await admin.execute(f"DROP TABLE IF EXISTS public.{PGBENCH_TABLE}")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--out", default="tests/bench/out/wallet.md", type=Path)
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("--database-url or BENCH_DATABASE_URL: a scratch database (run.sh makes one)")
    asyncio.run(main(args.database_url, args.out))
