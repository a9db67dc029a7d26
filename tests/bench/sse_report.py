"""The live run events section of the benchmark report (tests/bench/sse_bench.py), between its markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report import fmt, met, splice_between

BEGIN = "<!-- sse-bench:begin (tests/bench/sse_bench.py) -->"
END = "<!-- sse-bench:end -->"
TARGET_P99_MS = 50.0
TARGET_BYTES_PER_CLIENT = 50 * 1024


def render(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    phases = {(x["design"], x["clients"]): x for x in r["phases"]}
    most = max(r["counts"])
    out = [
        BEGIN,
        "## Live run events (SSE): append-to-client latency, memory and CPU per connected client",
        "",
        f"{r['date']}; {r['server']}; {', '.join(f'{k} {v}' for k, v in m.items())}; load average"
        f" {fmt(r['load'], 1)} at the start. `make bench` with `BENCH_ONLY=sse` (tests/bench/sse_bench.py),"
        f" {fmt(r['seconds'])} s of appends per phase at {fmt(r['rate'])} appends/s, each to a random"
        " connected client's run, by another process than the server (one `NodeLog` per transaction,"
        " then its `Wakeup.appended()`). Latency is from the appender's BEGIN to the client's reading of"
        " the frame. **Poll** (before): each client's handler reads its run's stream every 2 s."
        " **Push** (after): platform-api as it is, one listener per process woken by the NOTIFY, fanning"
        " out to the clients of each run. Memory: the server's RSS growth while the clients connected,"
        " per client. CPU: cores used during the appending phase by the server process and by"
        " PostgreSQL.",
        "",
        "| clients | design | events seen / appended | p50 ms | p90 ms | p99 ms | max ms | KB per client"
        " | server cores | PostgreSQL cores | connecting took s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count in r["counts"]:
        for design in ("poll", "push"):
            x = phases[(design, count)]
            out.append(
                f"| {count:,} | {design} | {x['n']:,} / {x['written']:,} | {fmt(x['p50'], 1)}"
                f" | {fmt(x['p90'], 1)} | {fmt(x['p99'], 1)} | {fmt(x['max'], 1)}"
                f" | {fmt(x['per_client_bytes'] / 1024, 1)}"
                f" | {fmt(x['server_cores'], 2)} | {fmt(x['pg_cores'], 2)} | {fmt(x['connect_seconds'], 1)} |"
            )
    push, poll = phases[("push", most)], phases[("poll", most)]
    push_cpu = push["server_cores"] + push["pg_cores"]
    poll_cpu = poll["server_cores"] + poll["pg_cores"]
    out += [
        "",
        f"Targets at {most:,} clients: p99 < {fmt(TARGET_P99_MS)} ms: {fmt(push['p99'], 1)} ms,"
        f" {met(push['p99'] < TARGET_P99_MS)}; < 50 KB per client:"
        f" {fmt(push['per_client_bytes'] / 1024, 1)} KB,"
        f" {met(push['per_client_bytes'] < TARGET_BYTES_PER_CLIENT)}; less CPU than {most:,} pollers:"
        f" {fmt(push_cpu, 2)} cores (server + PostgreSQL) against {fmt(poll_cpu, 2)},"
        f" {met(push_cpu < poll_cpu)}.",
    ]
    out.append(
        "\nKB per client with one client is that first stream's warm-up (the first request's"
        " allocations), not a per-client cost; the figure is the one with many."
    )
    if most < 5000:
        out.append(f"\nRun with {most:,} clients (`BENCH_SSE_CLIENTS`), not the issue's 5,000.")
    out += [END, ""]
    return "\n".join(out)


def splice(path: Path, section: str) -> None:
    splice_between(path, section, BEGIN, END)
