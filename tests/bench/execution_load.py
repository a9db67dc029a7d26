"""The client of the execution benchmark: one aiohttp session with keep-alive, requests that are built
before the phase, one at a time (sequential) or from N workers (concurrent), latencies in
``perf_counter_ns``, and the time to the first token of a stream."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from common import logger, summary
from cpu import CpuMeter, CpuSplit

log = logger("execution-bench")


@dataclass(frozen=True)
class Target:
    """Something to call: ``mode`` is ``call`` (the whole answer), ``ttft`` (an OpenAI stream: until
    the first chunk with content) or ``sse`` (our stream: until the first ``event: token`` frame)."""

    key: str
    label: str
    url: str
    items: tuple[tuple[dict[str, str], bytes], ...]  # (headers, body), cycled over
    mode: str = "call"
    via: str = "direct"  # the process in front of the fake: direct | litellm | ours


@dataclass
class Phase:
    target: str
    kind: str  # "sequential" | "concurrent"
    clients: int
    repeat: int
    seconds: float = 0.0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)
    cpu: CpuSplit | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def lat(self) -> dict[str, float]:
        return summary(self.latency_ms)


class Failed(Exception):
    pass


def _has_content(line: bytes) -> bool:
    """An OpenAI stream line carrying text: ``data: {...}`` whose first choice's delta has content."""
    if not line.startswith(b"data: {") or b"content" not in line:
        return False
    choices = json.loads(line[6:]).get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


async def one(http: aiohttp.ClientSession, target: Target, item: tuple[dict[str, str], bytes]) -> float:
    """Milliseconds to the whole answer (``call``) or to the first token (``ttft``, ``sse``); the
    stream is then read to its end (so the connection is reused), outside the figure."""
    headers, body = item
    start = time.perf_counter_ns()
    async with http.post(target.url, data=body, headers=headers) as response:
        if response.status != 200:
            await response.read()
            raise Failed(str(response.status))
        if target.mode == "call":
            await response.read()
            return (time.perf_counter_ns() - start) / 1e6
        first: int | None = None
        token_frame = False
        async for line in response.content:
            if first is not None:
                continue
            if target.mode == "ttft":
                if _has_content(line):
                    first = time.perf_counter_ns()
            elif line.startswith(b"event: "):
                token_frame = line.startswith(b"event: token")
                if line.startswith(b"event: error"):
                    raise Failed("event: error")
            elif token_frame and line.startswith(b"data:"):
                first = time.perf_counter_ns()
        if first is None:
            raise Failed("no token")
        return (first - start) / 1e6


async def _timed(http: aiohttp.ClientSession, target: Target, item, phase: Phase | None) -> None:
    try:
        ms = await one(http, target, item)
    except Failed as error:
        if phase is not None:
            phase.errors[str(error)] += 1
        return
    except (aiohttp.ClientError, TimeoutError) as error:
        if phase is not None:
            phase.errors[type(error).__name__] += 1
        return
    if phase is not None:
        phase.ok += 1
        phase.latency_ms.append(ms)


async def run_phase(
    http: aiohttp.ClientSession,
    target: Target,
    phase: Phase,
    meter: CpuMeter,
    *,
    requests: int,
    seconds: float,
    warmup: int,
) -> Phase:
    """``phase.clients`` workers (1: sequential) share the session; the first ``warmup`` requests
    (all workers together) are not counted, then the phase runs until ``requests`` answers or
    ``seconds``, whichever comes first."""
    items = itertools.cycle(target.items)
    left = warmup

    async def warm() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await _timed(http, target, next(items), None)

    await asyncio.gather(*(warm() for _ in range(phase.clients)))
    budget = requests
    async with meter:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal budget
            while budget > 0 and time.perf_counter() < stop:
                budget -= 1
                await _timed(http, target, next(items), phase)

        await asyncio.gather(*(worker() for _ in range(phase.clients)))
    phase.seconds = meter.wall
    phase.cpu = meter.split
    lat = phase.lat
    log(
        f"{target.label}, {phase.kind} x{phase.clients} #{phase.repeat + 1}: {phase.ok} in"
        f" {phase.seconds:.1f}s, {phase.rate:,.0f}/s, p50 {lat['p50']:.3f} p99 {lat['p99']:.3f} ms,"
        f" errors {dict(phase.errors) or 0}, {phase.cpu.text()}"
    )
    return phase
