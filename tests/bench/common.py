"""What both benchmarks share: settings from the environment, statistics, machine CPU time and
the guard that keeps them on this machine."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


# PostgreSQL's own processes, counted as the server's CPU in both benchmarks.
AUX_PROCESSES = (
    "checkpointer",
    "background writer",
    "walwriter",
    "wal writer",
    "autovacuum launcher",
    "logical replication launcher",
    "archiver",
    "stats collector",
)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU-seconds of the whole machine since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except OSError:
        return None
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def check_local(url: str) -> None:
    host = urlsplit(url).hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get("BENCH_ALLOW_REMOTE"):
        raise SystemExit(
            f"refusing to benchmark a non-local server ({host}); set BENCH_ALLOW_REMOTE=1 to insist"
        )
