"""Where the CPU went during a phase, per process from /proc: the client (this process, or its
children such as pgbench), the services it runs, PostgreSQL, RabbitMQ, everything else, idle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CLK_TCK = os.sysconf("SC_CLK_TCK")

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

# Every group a split can show, in the order it shows them.
GROUPS = ("client", "fake", "litellm", "execution", "billing", "wallet", "nginx", "pg", "rabbitmq")
CLIENT_AND_PG = ("client", "pg")  # the wallet benchmark: no services, no broker


def machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU-seconds of the whole machine since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except OSError:
        return None
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


@dataclass(frozen=True)
class CpuSplit:
    """Cores used per group over a phase (of ``cores``), and by the whole machine."""

    wall: float
    cores: int
    parts: dict[str, float]
    machine: float | None
    loop: tuple[float, float] | None = (
        None  # billing-webhook's main thread: (on a CPU, runnable but waiting for one)
    )

    def get(self, name: str) -> float:
        return self.parts.get(name, 0.0)

    @property
    def client(self) -> float:
        return self.get("client")

    @property
    def postgres(self) -> float | None:
        """This database's backends and the server's shared processes; None without /proc."""
        return self.parts.get("pg")

    def text(self) -> str:
        # nginx only where it ran (its master process is watched throughout, idle outside its phase).
        shown = [
            f"{name} {self.parts[name]:.2f}"
            for name in GROUPS
            if name in self.parts and (name != "nginx" or self.parts[name] >= 0.005)
        ]
        if self.machine is not None:
            other = self.machine - sum(self.parts.values())
            shown.append(f"other {max(other, 0):.2f}")
            shown.append(f"idle {max(self.cores - self.machine, 0):.2f}")
        return " / ".join(shown)


def combine(splits: list[CpuSplit]) -> CpuSplit:
    """Several phases' CPU splits as one, weighted by their length."""
    wall = sum(x.wall for x in splits)
    names = [name for name in GROUPS if all(name in x.parts for x in splits)]
    parts = {name: sum(x.parts[name] * x.wall for x in splits) / wall for name in names}
    machine = None
    if all(x.machine is not None for x in splits):
        machine = sum(x.machine * x.wall for x in splits) / wall  # type: ignore[operator]
    return CpuSplit(wall, splits[0].cores, parts, machine)


class CpuMeter:
    """Where the CPU went during a phase (``async with CpuMeter(...) as meter``, then ``meter.split``).

    ``groups`` are the ones to count: ``client`` (this process, or with ``client="children"`` the
    processes it waited for, such as pgbench), the services in ``pids`` (group: process ids; the
    children of ``nginx``'s too), ``pg`` (the backends connected to database ``dbname``, their
    parallel workers, and the server's shared processes: WAL writer, checkpointer, ...; another
    database's backends count as "other") and ``rabbitmq`` (the whole broker, shared by every
    vhost). Sampled every 0.2 s, so that processes which exit during the phase (pgbench's backends)
    are counted up to their last sample; ``poll=False`` samples only at the start and the end (for
    processes that live through the phase: a scan of /proc every 0.2 s in the client's event loop
    would show in a sub-millisecond p99). ``loop_pid``: also measure how busy that process's main
    thread (an event loop) was.
    """

    def __init__(
        self,
        dbname: str,
        *,
        groups: tuple[str, ...] = GROUPS,
        pids: dict[str, set[int]] | None = None,
        loop_pid: int | None = None,
        client: Literal["self", "children"] = "self",
        poll: bool = True,
    ) -> None:
        self.dbname, self.groups, self.pids = dbname, groups, pids or {}
        self.loop_pid, self.client, self.poll = loop_pid, client, poll
        self.available = Path("/proc/self/stat").exists()
        self.start: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        workers: dict[int, tuple[int, float]] = {}  # parallel workers: their leader's pid, their CPU
        fixed = {pid: group for group, pids in self.pids.items() for pid in pids}
        nginx_parents = self.pids.get("nginx", set())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            head, _, rest = raw.rpartition(")")
            comm = head.partition("(")[2]
            fields = rest.split()
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
            ppid = int(fields[1])
            group = fixed.get(pid)
            if group is None and comm == "nginx" and ppid in nginx_parents:
                group = "nginx"
            elif group is None and comm == "beam.smp":
                group = "rabbitmq"
            elif group is None and comm == "postgres":
                try:
                    title = (
                        Path(f"/proc/{entry}/cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode(errors="replace")
                    )
                except OSError:
                    continue
                if f" {self.dbname} " in title or any(n in title for n in AUX_PROCESSES) or "-D " in title:
                    group = "pg"
                elif leader := re.search(r"parallel worker for PID (\d+)", title):
                    workers[pid] = (int(leader.group(1)), cpu)
            if group is not None and group in self.groups:
                found[pid] = (group, cpu)
        for pid, (leader_pid, cpu) in workers.items():
            if leader_pid in found and "pg" in self.groups:
                found[pid] = ("pg", cpu)
        return found

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.last.update(self._sample())

    def _schedstat(self) -> tuple[int, int] | None:
        """(ns on a CPU, ns runnable but waiting for a CPU) of the event loop's thread: the main thread of
        ``loop_pid``. Their sum over a phase is how busy the loop was, whether or not it got a core."""
        if self.loop_pid is None:
            return None
        try:
            values = Path(f"/proc/{self.loop_pid}/task/{self.loop_pid}/schedstat").read_text().split()
        except OSError:
            return None
        return int(values[0]), int(values[1])

    def _client_cpu(self) -> float:
        who = resource.RUSAGE_SELF if self.client == "self" else resource.RUSAGE_CHILDREN
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    async def __aenter__(self) -> CpuMeter:
        if self.available:
            self.start = self._sample()
            self.last = dict(self.start)
            if self.poll:
                self._task = asyncio.create_task(self._poll())
        self._machine = machine_busy()
        self._sched = self._schedstat()
        self._client = self._client_cpu()
        self._wall = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        client = self._client_cpu() - self._client
        end = machine_busy()
        sched = self._schedstat()
        loop = None
        if sched is not None and self._sched is not None:
            loop = (
                (sched[0] - self._sched[0]) / 1e9 / self.wall,
                (sched[1] - self._sched[1]) / 1e9 / self.wall,
            )
        parts: dict[str, float] = defaultdict(float)
        if self.available:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self.last.update(self._sample())
            if "pg" in self.groups:
                parts["pg"] += 0.0  # shown even when idle, unlike a service that did not run
            for pid, (group, cpu) in self.last.items():
                parts[group] += cpu - self.start.get(pid, (group, 0.0))[1]
        shares = {g: v / self.wall for g, v in parts.items() if g != "client"}
        shares["client"] = client / self.wall
        machine = None
        if self._machine and end and end[1] > self._machine[1]:
            machine = (end[0] - self._machine[0]) / (end[1] - self._machine[1]) * (os.cpu_count() or 1)
        self.split = CpuSplit(self.wall, os.cpu_count() or 1, shares, machine, loop)
