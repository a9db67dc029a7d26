"""The plain-PostgreSQL baselines: pgbench running the same kind of row update as a command."""

from __future__ import annotations

import asyncio
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from common import logger
from cpu import CLIENT_AND_PG, CpuMeter, CpuSplit

log = logger("bench")


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
    async with CpuMeter(urlsplit(url).path.lstrip("/"), groups=CLIENT_AND_PG, client="children") as meter:
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


def pgbench_version() -> str:
    return subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout.split()[-1]
