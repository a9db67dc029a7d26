"""What both benchmarks share: settings from the environment, the guard that keeps them on this
machine, their log lines and their statistics."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit


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
