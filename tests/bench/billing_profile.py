# ruff: noqa: E501, ASYNC240 - long lines, small file reads
"""Where billing-webhook's time goes, sampled with py-spy (when it is found)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from billing_load import DeliveryMaker, Phase, run_phase
from billing_system import drain
from common import logger
from cpu import CpuMeter

log = logger("billing-bench")


# (label, any of these in the stack, and - if given - this one too). Frames read "function (pkg/file.py:line)".
# A sample counts once per group; groups overlap (a handler contains its parts).
PROFILE_GROUPS: list[tuple[str, tuple[str, ...], str | None]] = [
    ("waiting in epoll (the event loop had nothing to run)", ("EpollSelector.select (",), None),
    ("POST /webhook/lemonsqueezy handler, whole", ("lemonsqueezy (billing_webhook/http/webhook.py",), None),
    ("… `deliveries.record` (the DeliveryReceived command)", ("Deliveries.record (",), None),
    (
        "… checkout-session lookup (`queries.session`)",
        ("session (billing_webhook/application/queries.py",),
        "lemonsqueezy (billing_webhook/http/webhook.py",
    ),
    (
        "… `parse_body` (pydantic, JSON:API document)",
        ("parse_body (",),
        "lemonsqueezy (billing_webhook/http/webhook.py",
    ),
    ("… `_json_object` (json.loads of the same body)", ("_json_object (",), None),
    (
        "… `model_for` (builds `Document[Resource]` on every call)",
        ("model_for (",),
        "lemonsqueezy (billing_webhook/http/webhook.py",
    ),
    ("… … of which pydantic rebuilding that class", ("create_generic_submodel (",), "model_for ("),
    ("… signature (HMAC)", ("verify (billing_webhook/signatures.py",), None),
    (
        "delivery processor (`DeliveryProcessor.process`, every partition's task)",
        ("DeliveryProcessor.process (", "DeliveryProcessor.handle_batch_on_pool"),
        None,
    ),
    (
        "relay (contract events, publish, confirms)",
        ("Relay.handle_batch (", "Relay._publish (", "publish (lf_messaging/publisher.py"),
        None,
    ),
    ("reading the log (`read_after`: fetch, decode rows)", ("read_after (",), None),
    (
        "socket sends (`transport.write`: a send(2) per message, all callers)",
        ("_SelectorSocketTransport.write (",),
        None,
    ),
    ("json encode (jsonb codec with sort_keys, responses)", ("JSONEncoder.encode (",), None),
    ("json decode", ("JSONDecoder.decode (",), None),
    ("pydantic validation / serialisation", ("model_validate", "model_dump"), None),
    ("structlog / logging", ("structlog/", "logging/__init__.py"), None),
    ("prometheus_client", ("prometheus_client/",), None),
]


def pyspy_binary() -> str | None:
    """BENCH_PYSPY (a path), else py-spy on the PATH or in this environment; None with BENCH_PROFILE=0."""
    if os.environ.get("BENCH_PROFILE", "").strip() == "0":
        return None
    for candidate in (
        os.environ.get("BENCH_PYSPY", "").strip(),
        shutil.which("py-spy") or "",
        str(Path(sys.executable).parent / "py-spy"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    if os.environ.get("BENCH_PROFILE", "").strip() == "1":
        raise SystemExit("BENCH_PROFILE=1 but no py-spy: `uv pip install py-spy` (not a project dependency)")
    return None


def summarise_profile(raw: str) -> dict[str, Any]:
    """py-spy's collapsed stacks ("frame;frame;... count", root first) -> share of samples per
    group (inclusive) and the hottest leaf frames (self time)."""
    total = 0
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for label, needles, within in PROFILE_GROUPS:
            if any(needle in stack for needle in needles) and (within is None or within in stack):
                groups[label] += count
        leaves[stack.rsplit(";", 1)[-1]] += count
    return {"samples": total, "groups": groups, "leaves": leaves.most_common(10)}


async def _pyspy(pyspy: str, pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process:
    # --idle: every sample counts, waiting included, so shares are shares of wall-clock time. Blocking
    # mode (the default: the process is paused for each sample) so that stacks are whole.
    return await asyncio.create_subprocess_exec(
        pyspy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200",
        "--format", "raw", "--output", str(out), "--idle",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _pyspy_result(proc: asyncio.subprocess.Process, out: Path, timeout: float) -> dict[str, Any] | None:
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0 or not out.exists():
        log(f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
        return None
    keep = os.environ.get("BENCH_PROFILE_DIR", "").strip()
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(out, Path(keep) / out.name)
    return summarise_profile(out.read_text())


async def profile_phases(
    http: aiohttp.ClientSession,
    url: str,
    seconds: float,
    meter: CpuMeter,
    maker: DeliveryMaker,
    clients: int,
    pid: int,
    pyspy: str,
    admin: asyncpg.Connection,
    amqp_url: str,
    drain_s: float,
) -> dict[str, Any] | None:
    """billing-webhook under py-spy twice: while it accepts deliveries (closed loop), then while its
    processor works through the backlog that left, no deliveries arriving."""
    workdir = Path(tempfile.mkdtemp(prefix="billing-profile-"))
    try:
        maker.prepare(int(seconds * 2000))
        accepting = workdir / "accepting.txt"
        proc = await _pyspy(pyspy, pid, seconds, accepting)
        await asyncio.sleep(0.5)  # py-spy attaches
        phase = Phase(
            "deliveries, closed loop, under py-spy", "deliveries", "closed", "direct", clients, None
        )
        await run_phase(http, phase, url, seconds, meter, maker)
        maker.ready.clear()
        accept = await _pyspy_result(proc, accepting, seconds + 30)
        processing = workdir / "processing.txt"
        proc = await _pyspy(pyspy, pid, seconds, processing)
        await drain(admin, amqp_url, phase, drain_s, meter)
        process = await _pyspy_result(proc, processing, seconds + 30)
        if accept is None or process is None:
            return None
        log(f"profile: {accept['samples']} samples accepting, {process['samples']} processing")
        return {"phase": phase, "accepting": accept, "processing": process}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
