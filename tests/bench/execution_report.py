# ruff: noqa: E501, RUF001, RUF002 - a report writer: long prose lines, multiplication signs and dashes
"""The execution section of the report: what was measured, the figures (the median of the repeats with
their spread), the added latency against the fake called directly in the same run, and the verdicts."""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Any

from cpu import CpuSplit, combine
from execution_load import Phase
from report import met, splice_between

BEGIN = "<!-- execution-bench:begin (tests/bench/execution_bench.py) -->"
END = "<!-- execution-bench:end -->"
BASELINE = {"call": "direct", "ttft": "direct-stream", "sse": "direct-stream"}


def spread(values: list[float], digits: int = 2) -> str:
    """``median (min–max)`` of the repeats; ``n/a`` without any."""
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    m = median(values)
    if len(values) == 1:
        return f"{m:,.{digits}f}"
    return f"{m:,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def _med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return median(values) if values else float("nan")


class Results:
    """The phases by target and kind, repeat by repeat."""

    def __init__(self, r: dict[str, Any]) -> None:
        self.r = r
        self.targets = {t["key"]: t for t in r.get("targets", [])}
        self.phases: dict[tuple[str, str], list[Phase]] = {}
        for p in r.get("phases", []):
            self.phases.setdefault((p.target, p.kind), []).append(p)
        for runs in self.phases.values():
            runs.sort(key=lambda p: p.repeat)

    def has(self, key: str, kind: str = "sequential") -> bool:
        return bool(self.phases.get((key, kind)))

    def stat(self, key: str, kind: str, what: str) -> list[float]:
        """One value a repeat: ``p50``/``p99``/``mean`` (ms) or ``rate`` (answers/s)."""
        return [p.rate if what == "rate" else p.lat[what] for p in self.phases.get((key, kind), [])]

    def added(self, key: str, kind: str, what: str = "p50") -> list[float]:
        """The target's figure less its baseline's, repeat by repeat (the same run, the same repeat)."""
        base = BASELINE[self.targets[key]["mode"]]
        mine = {p.repeat: p.lat[what] for p in self.phases.get((key, kind), [])}
        theirs = {p.repeat: p.lat[what] for p in self.phases.get((base, kind), [])}
        return [mine[k] - theirs[k] for k in sorted(mine) if k in theirs]

    def cpu(self, key: str, kind: str) -> CpuSplit | None:
        splits = [p.cpu for p in self.phases.get((key, kind), []) if p.cpu is not None]
        return combine(splits) if splits else None

    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (key, kind), runs in self.phases.items():
            n = sum(sum(p.errors.values()) for p in runs)
            if n:
                out[f"{key} {kind}"] = n
        return out


def cpu_text(split: CpuSplit | None) -> str:
    """The groups that worked, then "other" (the rest of the machine: on this shared box, other
    people's work too) and idle."""
    if split is None:
        return "n/a"
    shown = [f"{g} {v:.2f}" for g, v in split.parts.items() if v >= 0.005 or g == "client"]
    if split.machine is not None:
        shown.append(f"other {max(split.machine - sum(split.parts.values()), 0):.2f}")
        shown.append(f"idle {max(split.cores - split.machine, 0):.2f}")
    return " / ".join(shown)


def verdicts(res: Results) -> list[tuple[str, str, str]]:
    """(target, what was measured, verdict) for the issue's five targets."""
    rows: list[tuple[str, str, str]] = []
    lite = res.added("litellm", "sequential") if res.has("litellm") else []
    lite_m = _med(lite)
    pending = "pending: execution-proxy not measured in this run"

    if res.has("byok"):
        byok = _med(res.added("byok", "sequential"))
        rows.append(
            (
                "`/execute/byok` adds at most 1 ms at p50",
                f"{spread(res.added('byok', 'sequential'), 3)} ms",
                met(byok <= 1.0),
            )
        )
        rows.append(
            (
                "… and at most a quarter of what LiteLLM adds",
                f"{byok:.3f} ms vs ¼ × {lite_m:.3f} = {lite_m / 4:.3f} ms",
                met(byok <= lite_m / 4),
            )
        )
    else:
        rows.append(("`/execute/byok` adds at most 1 ms at p50", "—", pending))
        rows.append(
            (
                "… and at most a quarter of what LiteLLM adds",
                f"¼ of LiteLLM's {lite_m:.3f} ms = {lite_m / 4:.3f} ms",
                pending,
            )
        )
    if res.has("wallet"):
        wallet = _med(res.added("wallet", "sequential"))
        rows.append(
            (
                "`/execute/wallet` (reserve and settle) adds less than LiteLLM with no database",
                f"{spread(res.added('wallet', 'sequential'), 3)} ms vs {lite_m:.3f} ms",
                met(wallet < lite_m),
            )
        )
    else:
        rows.append(
            (
                "`/execute/wallet` (reserve and settle) adds less than LiteLLM with no database",
                f"LiteLLM adds {spread(lite, 3)} ms",
                pending,
            )
        )
    if res.has("stream"):
        ttft = _med(res.added("stream", "sequential"))
        rows.append(
            (
                "time to first token through `/execute/stream` adds at most 2 ms at p50",
                f"{spread(res.added('stream', 'sequential'), 3)} ms",
                met(ttft <= 2.0),
            )
        )
    else:
        rows.append(("time to first token through `/execute/stream` adds at most 2 ms at p50", "—", pending))
    lite_rate = _med(res.stat("litellm", "concurrent", "rate"))
    clients = res.r["config"]["clients"]
    for key in ("byok", "wallet", "openai"):
        if res.has(key, "concurrent"):
            rate = _med(res.stat(key, "concurrent", "rate"))
            rows.append(
                (
                    f"at {clients} concurrent clients, at least 3× LiteLLM's requests/s (`{res.targets[key]['label']}`)",
                    f"{rate:,.0f}/s vs 3 × {lite_rate:,.0f} = {3 * lite_rate:,.0f}/s ({rate / lite_rate:.2f}×)",
                    met(rate >= 3 * lite_rate),
                )
            )
    if not res.has("byok", "concurrent"):
        rows.append(
            (
                f"at {clients} concurrent clients, at least 3× LiteLLM's requests/s",
                f"LiteLLM: {spread(res.stat('litellm', 'concurrent', 'rate'), 0)}/s, so ≥ {3 * lite_rate:,.0f}/s",
                pending,
            )
        )
    return rows


# The processes a path adds in front of the fake, whose CPU an answer costs.
OWN_CPU = {"direct": ("fake",), "litellm": ("litellm",), "ours": ("execution", "wallet", "pg", "rabbitmq")}


def cpu_ms_per_answer(res: Results, key: str, kind: str, group: str) -> float | None:
    """One process group's CPU-milliseconds per answer of a path, over all the repeats."""
    runs = res.phases.get((key, kind), [])
    seconds = sum(p.cpu.get(group) * p.cpu.wall for p in runs if p.cpu is not None)
    answers = sum(p.ok for p in runs)
    return seconds / answers * 1000 if answers else None


def cpu_per_answer(res: Results, key: str, kind: str) -> str:
    """CPU-milliseconds per answer of the processes the path puts in front of the fake (the fake
    itself for the direct call), over all the repeats."""
    runs = res.phases.get((key, kind), [])
    groups = OWN_CPU.get(res.targets[key]["via"], ())
    seconds = sum(p.cpu.get(g) * p.cpu.wall for p in runs if p.cpu is not None for g in groups)
    answers = sum(p.ok for p in runs)
    return f"{seconds / answers * 1000:.2f}" if answers and seconds else "n/a"


def table(res: Results, kind: str, keys: list[str]) -> list[str]:
    rows = [
        "| path | p50 ms | p99 ms | added at p50, ms | added at p99, ms | answers/s | CPU ms per answer | CPU, cores (all repeats) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in keys:
        if not res.has(key, kind):
            continue
        base = key == BASELINE[res.targets[key]["mode"]]
        rows.append(
            f"| {res.targets[key]['label']} | {spread(res.stat(key, kind, 'p50'), 3)} | {spread(res.stat(key, kind, 'p99'), 3)}"
            f" | {'baseline' if base else spread(res.added(key, kind), 3)}"
            f" | {'baseline' if base else spread(res.added(key, kind, 'p99'), 3)}"
            f" | {spread(res.stat(key, kind, 'rate'), 0)} | {cpu_per_answer(res, key, kind)} | {cpu_text(res.cpu(key, kind))} |"
        )
    return rows


INTRO = """\
## Execution: added latency, ours beside LiteLLM

Generated by `make bench` too: tests/bench/run.sh runs tests/bench/execution_bench.py after the billing
benchmark and appends this section (`BENCH_ONLY=execution make bench` regenerates it alone, in place).
The issue's requirement: against a fake OpenAI that answers at once, in one run on one machine, the
fake called directly, through `/execute/byok`, `/execute/wallet`, `/execute/openai/v1/chat/completions`
and through LiteLLM's proxy (its own environment, no database, the same fake); p50/p99 and added
latency, sequential and at 8 concurrent clients; time to first token through `/execute/stream`.
Targets: `/execute/byok` adds **at most 1 ms at p50** and **at most a quarter of what LiteLLM adds**;
`/execute/wallet`, with reserve and settle, adds **less than LiteLLM adds** with no database; time to
first token adds **at most 2 ms at p50**; at 8 concurrent clients, **at least 3× LiteLLM's
requests/s**. Knobs: `BENCH_SECONDS`, `BENCH_EXECUTION_REQUESTS`, `BENCH_EXECUTION_SECONDS`,
`BENCH_EXECUTION_CLIENTS`, `BENCH_EXECUTION_REPEATS`, `BENCH_EXECUTION_LENSERS`, `BENCH_EXECUTION_OURS`
(the docstring of execution_bench.py).

### What is measured

* **Processes**, each on a free port of 127.0.0.1: the fake OpenAI ({fake}; `POST /v1/chat/completions`,
  buffered or streamed, written in one go as soon as the request is parsed); LiteLLM's proxy in front of
  it; and execution-proxy with wallet-api on a scratch database and RabbitMQ vhost, both as `python -m
  <package> serve` runs them (`ENV_MODE=development`, `LOG_LEVEL=WARNING`, `OPENAI_API_URL=<fake>/v1`),
  requests cycling over funded lensers, each with a BYOK key stored through `POST /execute/keys`.
* **LiteLLM {litellm_version}** (`litellm[proxy]`, pinned with its whole closure in
  tests/bench/litellm/requirements.txt, installed by tests/bench/litellm/setup.sh into
  tests/bench/out/litellm-venv, never in the workspace's lock), started as `litellm --config
  tests/bench/litellm/config.yaml --host 127.0.0.1 --port N --num_workers 1` with {litellm_env}: one
  uvicorn worker (our service is one process too), no database, no callbacks, no retries, a fixed master
  key (it refuses to start without one; with no database checking it is a comparison of strings),
  installed compiled to bytecode (this machine sets `PYTHONDONTWRITEBYTECODE`; without .pyc files
  LiteLLM compiled, on every request, the source of an OpenTelemetry module it then fails to import: a
  third of its CPU in a py-spy profile). Granian instead of uvicorn (`--run_granian`) was tried and was
  no faster. It took **{litellm_startup:.1f} s** from launch to answering `/health/liveliness`.
* **The client**: this process, one aiohttp session with keep-alive (a pool of as many connections as
  clients), every request body built before the phases; latency from `perf_counter_ns` before the
  request to the whole answer read, or for a stream to the first chunk with content (OpenAI's format)
  or the first `event: token` frame (ours); p50/p99 exact nearest-rank from the sorted samples. Each
  phase starts with {warmup} requests not counted. *Sequential*: one request at a time,
  {requests:,} requests or {seq_seconds} s, whichever ends first. *Concurrent*: {clients} workers, each
  sending its next request as soon as it has the answer, for {conc_seconds} s; answers/s is what they
  got through.
* **Repeats**: every phase {repeats} times, the targets in alternating order (forward, backward, …), since
  this is a small shared machine and a slow moment should not land on one target only. A figure is the
  **median of the repeats, with their spread (min–max)** in brackets. **Added** = the path's p50 less the
  fake's own p50 *in the same repeat* (buffered paths against the buffered direct call, streams against
  the direct stream), then the median of those.
* **CPU**, in cores of the machine, during the phase (from /proc, sampled at its start and end): the
  client (this process), the fake, LiteLLM, execution-proxy, wallet-api, PostgreSQL and RabbitMQ when they
  ran; "other" is anything else on the machine (on this shared box, other people's work). With {nproc}
  cores, a client near 1.0 is the load generator saturating its core. *CPU ms per answer*: the CPU of
  the processes the path puts in front of the fake (LiteLLM; execution-proxy, wallet-api, PostgreSQL
  and RabbitMQ), or the fake's own for the direct call, divided by the answers.
"""


def render(r: dict[str, Any]) -> str:
    res = Results(r)
    c, m = r["config"], r["machine"]
    out = [
        BEGIN,
        INTRO.format(
            fake=r.get("fake", "?"),
            litellm_version=r["litellm"]["version"],
            litellm_env=", ".join(f"`{k}={v}`" for k, v in r["litellm_env"].items()),
            litellm_startup=r["litellm"]["startup_seconds"],
            warmup=c["warmup"],
            requests=c["requests"],
            seq_seconds=c["seq_seconds"],
            conc_seconds=c["conc_seconds"],
            clients=c["clients"],
            repeats=c["repeats"],
            nproc=m.get("nproc", "?"),
        ),
    ]
    out.append(
        f"Run {r['date']} on {m.get('cpu', '?')}, {m.get('nproc', '?')} cores, {m.get('memory', '?')}; Python"
        f" {m.get('python', '?')}; {m.get('os', '?')}"
        + (f"; PostgreSQL {m['pg']}" if "pg" in m else "")
        + f". The execution part took {r['total_seconds']:.0f} s.\n"
    )
    ours = r.get("ours")
    if ours is None:
        out.append(
            "**execution-proxy was not measured in this run**: it has no `serve` yet (the benchmark looks for"
            " `python -m execution_proxy` and measures its routes as soon as they answer). The baselines and"
            " LiteLLM below are what its figures will be set against.\n"
        )
    elif ours.get("missing"):
        out.append(
            "**Not measured** (the probe before the phases did not get a 200): "
            + "; ".join(f"`{k}`: {v}" for k, v in ours["missing"].items())
            + ".\n"
        )
    out.append("### The targets\n")
    out.append("| target | measured: median (min–max) of the repeats | verdict |")
    out.append("|---|---|---|")
    out += [f"| {a} | {b} | {v} |" for a, b, v in verdicts(res)]
    out.append("")

    calls = [k for k, t in res.targets.items() if t["mode"] == "call"]
    streams = [k for k, t in res.targets.items() if t["mode"] != "call"]
    out.append("### Sequential: one request at a time\n")
    out += table(res, "sequential", calls)
    out.append("")
    out.append(f"### {c['clients']} concurrent clients\n")
    out += table(res, "concurrent", calls)
    out.append("")
    lite_rate = _med(res.stat("litellm", "concurrent", "rate"))
    direct_rate = _med(res.stat("direct", "concurrent", "rate"))
    ratios = [
        f"{res.targets[k]['label']} {_med(res.stat(k, 'concurrent', 'rate')) / lite_rate:.2f}×"
        for k in calls
        if k != "litellm" and res.has(k, "concurrent")
    ]
    out.append("Answers/s against LiteLLM's: " + ", ".join(ratios) + ".\n")
    out.append("### Time to first token, sequential\n")
    out += table(res, "sequential", streams)
    out.append("")
    out.append("### Reading\n")
    out += reading(res, lite_rate, direct_rate)
    out += where_the_time_goes(res)
    errors = res.errors()
    out.append(
        "Errors (any answer but 200, or a stream without a token): "
        + (", ".join(f"{k}: {v}" for k, v in errors.items()) if errors else "none")
        + ".\n"
    )
    out.append(END)
    return "\n".join(out) + "\n"


def reading(res: Results, lite_rate: float, direct_rate: float) -> list[str]:
    out = []
    lite = _med(res.added("litellm", "sequential"))
    lite99 = _med(res.added("litellm", "sequential", "p99"))
    direct = _med(res.stat("direct", "sequential", "p50"))
    out.append(
        f"* LiteLLM adds **{lite:.2f} ms at p50** ({lite99:.2f} ms at p99) to a call the fake answers in"
        f" {direct:.3f} ms; so `/execute/byok` may add at most {min(1.0, lite / 4):.3f} ms and"
        f" `/execute/wallet` less than {lite:.2f} ms, and at {res.r['config']['clients']} clients our routes"
        f" need at least {3 * lite_rate:,.0f} answers/s (LiteLLM: {lite_rate:,.0f}/s)."
    )
    conc = res.cpu("litellm", "concurrent")
    if conc is not None:
        out.append(
            f"* At {res.r['config']['clients']} clients LiteLLM used {conc.get('litellm'):.2f} cores (one worker: at"
            f" most 1.0), the fake {conc.get('fake'):.2f}, the client {conc.get('client'):.2f}: LiteLLM's one"
            f" process is the bottleneck, at {cpu_per_answer(res, 'litellm', 'concurrent')} ms of CPU per answer"
            " (its middlewares, auth, router, logging and cost hooks around the OpenAI SDK's call). More"
            " workers would use the second core, which the client and the fake need here; our service runs"
            " as one process too."
        )
    dc = res.cpu("direct", "concurrent")
    if dc is not None:
        out.append(
            f"* The ceiling of this client and fake: {direct_rate:,.0f} answers/s directly at the same concurrency"
            f" (client {dc.get('client'):.2f} cores, fake {dc.get('fake'):.2f}). Our routes cannot show more than"
            " that, and on 2 cores shared by the client, the fake and the service, a route's answers/s is bounded"
            " well below it: the ratio to LiteLLM is the figure that carries over to another machine."
        )
    seq = res.cpu("direct", "sequential")
    if seq is not None:
        out.append(
            f"* Sequential, the client spent {seq.get('client'):.2f} of a core calling the fake directly: its own"
            " share of each round trip is in the baseline and cancels out of every *added* figure."
        )
    out.append("")
    return out


def where_the_time_goes(res: Results) -> list[str]:
    """Why our routes add what they add: each process's CPU per answer, and what the route waits on."""

    def split(key: str) -> str:
        groups = ("execution", "wallet", "pg", "rabbitmq")
        parts = [(g, cpu_ms_per_answer(res, key, "sequential", g)) for g in groups]
        return ", ".join(f"{g} {ms:.2f}" for g, ms in parts if ms)

    out = []
    if res.has("byok"):
        out.append(
            f"* **`/execute/byok`** (CPU ms per answer, sequential: {split('byok')}). Nothing on its request"
            " path waits on the database: no platform rate limit (the caller's key pays), the resolved key"
            " remembered for 5 s, the JWT remembered per token, the execution recorded after the answer"
            " (PostgreSQL's share above is that record). What it adds is the Python HTTP hop itself: aiohttp"
            " parsing the request and writing the answer, the route, and a second HTTP exchange with the"
            " provider through a client session. On this machine that hop alone takes more than the 1 ms"
            " budget; a quarter of LiteLLM's figure is the harder of the two bounds only on a faster core."
        )
    if res.has("wallet"):
        out.append(
            f"* **`/execute/wallet`** (CPU ms per answer, sequential: {split('wallet')}). It waits on two"
            " transactions it must not skip: the reservation (an HTTP call to wallet-api, whose reserve is"
            " one transaction of 9 statements) and its own record (a transaction of about 6 statements and a"
            " WAL flush: the charge is durable before the answer). wallet-api then captures through the relay"
            " and its consumer, and its ledger follower and relay wake on every append; wallet-api's CPU per"
            " answer is the largest share, so on 2 cores it also bounds the concurrent answers/s. These are"
            " the command-path costs issue 8 takes on (at most 4 round trips a command, no NOTIFY per append,"
            " batched followers); this route is the benchmark that will show them."
        )
    if res.has("stream"):
        out.append(
            "* **Time to first token**: a stream holds its reservation before the provider is asked (the"
            " charge must be covered before any token is produced), so its first token waits for the rate"
            " limit and the reservation; against a provider that answers at once that wait is all of the"
            " added time. A real provider's first token takes hundreds of milliseconds: starting its request"
            " while the reservation is made would hide the wait there, and is not done yet."
        )
    out.append("")
    return out


def splice(path: Path, section: str) -> None:
    splice_between(path, section, BEGIN, END)
