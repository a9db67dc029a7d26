"""What the benchmarks share: settings from the environment, the guard that keeps them on this
machine, their log lines, their statistics and a PostgreSQL server of their own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def check_local(url: str) -> None:
    host = urlsplit(url).hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get("BENCH_ALLOW_REMOTE"):
        raise SystemExit(
            f"refusing to benchmark a non-local server ({host}); set BENCH_ALLOW_REMOTE=1 to insist"
        )


def report_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The command line every bench takes (``--out``, ``--splice-into``); a bench adds its own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the section (with its markers) to this file")
    parser.add_argument("--splice-into", type=Path, help="replace the section in this file (or append it)")
    return parser


async def publish(
    section: str, out: Path | None, splice_into: Path | None, splice: Callable[[Path, str], None]
) -> None:
    """The report section to ``--out`` and into ``--splice-into`` (with the bench's ``splice``)."""
    if out is not None:
        await asyncio.to_thread(out.write_text, section)
    if splice_into is not None:
        splice(splice_into, section)


def logger(name: str) -> Callable[[str], None]:
    """A progress line on stderr, ``[name HH:MM:SS] message`` (the report goes to a file)."""

    def log(message: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary(values_ms: list[float]) -> dict[str, float]:
    """Count, mean, p50, p90, p99 and max of some latencies (NaN when there are none)."""
    values = sorted(values_ms)
    return {
        "n": len(values),
        "mean": sum(values) / len(values) if values else float("nan"),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": values[-1] if values else float("nan"),
    }


def initdb() -> str | None:
    """PostgreSQL's ``initdb``, also where Debian keeps it off the PATH; None without one."""
    if found := shutil.which("initdb"):
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return str(versions[-1]) if versions else None


class PrivateCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with the server's default settings (as user
    ``postgres`` when run as root)."""

    def __init__(self, directory: Path, port: int, pg_ctl: list[str]) -> None:
        self.directory, self.port, self._pg_ctl = directory, port, pg_ctl
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    @classmethod
    def start(cls) -> PrivateCluster:
        found = initdb()
        assert found is not None
        bindir = Path(found).parent
        directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_user:
            shutil.chown(directory, "postgres")
        data = directory / "data"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], **quiet
        )
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
        pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(directory / "log")]
        subprocess.run([*pg_ctl, "-o", options, "start"], **quiet)
        return cls(directory, port, pg_ctl)

    def stop(self) -> None:
        subprocess.run([*self._pg_ctl, "-m", "immediate", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def scratch_database(
    setting: str, name: str, log: Callable[[str], None]
) -> AsyncIterator[tuple[str, str]]:
    """Database ``name``, made afresh for the run and dropped after it, and what server it is on
    (for the report). Readers read below the oldest transaction running anywhere on the server, so
    a busy shared server would swamp what a bench measures: by default (``<setting>=private``, when
    ``initdb`` is found) on a cluster started for the run and stopped after it;
    ``<setting>=shared`` uses DATABASE_URL's server."""
    private = os.environ.get(setting, "private") != "shared" and initdb() is not None
    cluster = await asyncio.to_thread(PrivateCluster.start) if private else None
    if cluster is not None:
        log(f"private cluster on port {cluster.port}")
    server_url = cluster.url if cluster else os.environ["DATABASE_URL"]
    server = "a private cluster started for the run" if cluster else "DATABASE_URL's (shared) server"
    try:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        yield server_url.rsplit("/", 1)[0] + f"/{name}", server
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
        else:
            with contextlib.suppress(Exception):
                admin = await asyncpg.connect(server_url)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()
