"""Live run events (issue 10): append-to-client latency and what each connected SSE client costs,
pushed by one listener per process (platform-api as it is) beside the former design, where each
client's handler polled its run's events every 2 s, measured the same way in the same run.

A PostgreSQL cluster of its own (common.scratch_database: readers read below the cluster's
oldest running transaction, so a busy shared server would swamp what is measured;
``BENCH_SSE_SERVER=shared`` uses DATABASE_URL's server), database ``sse_bench``. Per phase one server
process on it:

- **push**: ``python -m platform_api serve`` (migrates on its first start), JWT-authenticated streams;
- **poll** (the baseline): this file with ``--poll-server``, a bare aiohttp app whose handler for the
  same path writes the same frames (``platform_api.http.run_events.event_frame``) and reads its run's
  stream every 2 s with the same query (``events_after``). No authentication (one cached JWT check
  per connection in the push server: not what differs).

This process holds the clients (raw asyncio sockets speaking HTTP/1.0, so the frames arrive
unchunked) and the appender: another process than the server, as a run worker is, appending one
``NodeLog`` per transaction with ``sent_at`` taken at BEGIN, to a random connected client's run, at
``BENCH_SSE_RATE`` per second (default 100) for ``BENCH_SECONDS``, then calling its own
``Wakeup.appended()`` (the NOTIFY that wakes the server's listener). A client notes, for each frame
of such an event, now minus ``sentAt``. Each run is one client's. Phases: 1, 100 and
``BENCH_SSE_CLIENTS`` (default 5,000) clients, each design. Memory per client: the server's RSS
once every client has its first frame, minus its RSS before they connected, over the count. CPU:
the server process's and PostgreSQL's (this database's backends and the cluster's own processes),
in cores, during the appending phase.

``python tests/bench/sse_bench.py --out FILE`` (tests/bench/run.sh, ``BENCH_ONLY=sse``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import check_local, env_float, env_int, logger, summary
from cpu import CpuMeter
from report import machine_facts
from sse_report import render, splice

from lf_eventstore import NewEvent, Wakeup, append
from lf_pg import create_pool
from lf_testing.tokens import make_token

log = logger("sse")

DATABASE = "sse_bench"
SCHEMA = "platform"
POLL_SECONDS = 2.0
CONNECT_CONCURRENCY = 100
LENSER = UUID("00000000-0000-4000-8000-000000000001")


# --- the former design: a poll per client -----------------------------------------------------


def poll_server(database_url: str, port: int) -> None:
    from aiohttp import web

    from platform_api.application.run_events import events_after
    from platform_api.domain.run_events import stream_id
    from platform_api.http.run_events import SSE_HEADERS, event_frame

    async def stream(request: web.Request) -> web.StreamResponse:
        stream = stream_id(UUID(request.match_info["runId"]))
        sent = int(request.headers.get("Last-Event-ID") or 0)
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while True:
                events = await events_after(request.app["pool"], stream, sent)
                if events:
                    await response.write(b"".join(event_frame(e) for e in events))
                    sent = events[-1].version
                await asyncio.sleep(POLL_SECONDS)
        return response

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pool(app: web.Application):
        app["pool"] = await create_pool(database_url, SCHEMA)
        yield
        await app["pool"].close()

    app = web.Application()
    app.router.add_get("/v1/runs/{runId}/events", stream)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(pool)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=1)


# --- the clients ------------------------------------------------------------------------------


class Client:
    """One SSE connection on a raw socket (HTTP/1.0: no chunked framing to undo)."""

    def __init__(self, run_id: UUID, latencies: list[float]) -> None:
        self.run_id, self.latencies = run_id, latencies
        self.since = time.time()  # a stream replays earlier phases' events first: not counted
        self.first = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, port: int, token: str) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        self.writer.write(
            f"GET /v1/runs/{self.run_id}/events HTTP/1.0\r\nHost: bench\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status!r}")
        while (await reader.readline()).strip():
            pass  # headers
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            if line.startswith(b"data: "):
                self.first.set()
                if b'"sentAt"' in line:
                    sent_at = json.loads(line[6:])["payload"]["sentAt"]
                    if sent_at >= self.since:
                        self.latencies.append((time.time() - sent_at) * 1000)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


# --- the server process -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_server(design: str, database_url: str) -> tuple[asyncio.subprocess.Process, int]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ENV_MODE": "development",
        "LOG_LEVEL": "WARNING",
        "SSE_MAX_CONNECTIONS": "100000",
    }
    if design == "push":
        command = [sys.executable, "-m", "platform_api", "serve"]
    else:
        command = [
            sys.executable,
            __file__,
            "--poll-server",
            "--database-url",
            database_url,
            "--port",
            str(port),
        ]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.0\r\n\r\n")
            status = await reader.readline()
            writer.close()
            if b" 200 " in status:
                return process, port
        if process.returncode is not None:
            break
        await asyncio.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the {design} server did not start")


async def stop_server(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- the runs and the appender ----------------------------------------------------------------


async def make_runs(pool: asyncpg.Pool, count: int) -> list[UUID]:
    runs = [uuid4() for _ in range(count)]
    for start in range(0, count, 250):
        async with pool.acquire() as conn, conn.transaction():
            for run_id in runs[start : start + 250]:
                data = {"run_id": str(run_id), "lenser_id": str(LENSER), "kind": "lens", "status": "queued"}
                await append(conn, f"run-{run_id}", 0, [NewEvent("RunQueued", data)])
    return runs


async def append_for(
    pool: asyncpg.Pool,
    wakeup: Wakeup,
    runs: list[UUID],
    versions: dict[UUID, int],
    seconds: float,
    rate: float,
) -> int:
    loop = asyncio.get_running_loop()
    start, n, written = loop.time(), 0, 0
    busy: set[UUID] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def one(run_id: UUID) -> None:
        nonlocal written
        async with pool.acquire() as conn:
            sent_at = time.time()
            async with conn.transaction():
                await append(
                    conn,
                    f"run-{run_id}",
                    versions[run_id],
                    [NewEvent("NodeLog", {"node_id": "n", "sent_at": sent_at})],
                )
        versions[run_id] += 1
        busy.discard(run_id)
        written += 1
        wakeup.appended()

    while (due := start + n / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - loop.time()))
        run_id = random.choice(runs)
        if run_id in busy:  # one writer per run at a time, as a run's stream lock would make it
            n += 1
            continue
        busy.add(run_id)
        task = asyncio.create_task(one(run_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.gather(*tasks)
    return written


async def phase(
    design: str, count: int, database_url: str, runs: list[UUID], versions: dict[UUID, int], seconds: float
) -> dict[str, Any]:
    rate = env_float("BENCH_SSE_RATE", 100)
    process, port = await start_server(design, database_url)
    pool = await create_pool(database_url, SCHEMA, min_size=2, max_size=8)
    wakeup = Wakeup(database_url, SCHEMA)
    token = make_token(str(LENSER), ttl=3600)
    latencies: list[float] = []
    clients = [Client(run_id, latencies) for run_id in runs[:count]]
    try:
        await asyncio.sleep(1.0)
        rss_before = rss_bytes(process.pid)
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect(client: Client) -> None:
            async with gate:
                await client.connect(port, token)
                await asyncio.wait_for(client.first.wait(), 60)

        began = time.monotonic()
        await asyncio.gather(*(connect(c) for c in clients))
        connect_seconds = time.monotonic() - began
        await asyncio.sleep(1.0)
        rss_after = rss_bytes(process.pid)
        await wakeup.wait(wakeup.subscribe(), 0.01)  # its LISTEN connection, which sends the NOTIFYs
        await asyncio.wait_for(wakeup.listening.wait(), 10)
        async with CpuMeter(
            DATABASE, groups=("server", "pg"), pids={"server": {process.pid}}, poll=False
        ) as meter:
            written = await append_for(pool, wakeup, runs[:count], versions, seconds, rate)
            tail = POLL_SECONDS + 1.0 if design == "poll" else 1.0
            deadline = time.monotonic() + tail + 10
            while len(latencies) < written and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        cpu = meter.split.parts
    finally:
        await asyncio.gather(*(c.close() for c in clients))
        await wakeup.close()
        await pool.close()
        await stop_server(process)
    result = summary(latencies) | {
        "design": design,
        "clients": count,
        "written": written,
        "connect_seconds": connect_seconds,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "per_client_bytes": (rss_after - rss_before) / count,
        "server_cores": cpu.get("server", 0.0),
        "pg_cores": cpu.get("pg", 0.0),
        "wall": meter.split.wall,
    }
    log(
        f"{design} x{count}: {result['n']}/{written} events, p50 {result['p50']:.1f} ms,"
        f" p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms;"
        f" {result['per_client_bytes'] / 1024:.1f} KB/client; server {result['server_cores']:.2f}"
        f" + pg {result['pg_cores']:.2f} cores; connected in {connect_seconds:.1f} s"
    )
    return result


async def main(out: Path | None, splice_into: Path | None) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    check_local(os.environ["DATABASE_URL"])
    seconds = env_float("BENCH_SECONDS", 10)
    most = env_int("BENCH_SSE_CLIENTS", 5000)
    counts = sorted({1, min(100, most), most})
    r: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": seconds,
        "rate": env_float("BENCH_SSE_RATE", 100),
        "counts": counts,
        "phases": [],
        "load": os.getloadavg()[0],
    }
    async with common.scratch_database("BENCH_SSE_SERVER", DATABASE, log) as (database_url, server):
        r["server"] = server
        admin = await asyncpg.connect(database_url)
        try:
            r["machine"] = await machine_facts(admin, ("synchronous_commit", "max_connections"))
        finally:
            await admin.close()
        # The push server's first start migrates the schema (serve migrates when its login may).
        process, _port = await start_server("push", database_url)
        await stop_server(process)
        pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=4)
        try:
            runs = await make_runs(pool, most)
        finally:
            await pool.close()
        versions = dict.fromkeys(runs, 1)
        log(f"{most} runs made")
        for count in counts:
            for design in ("poll", "push"):
                r["phases"].append(await phase(design, count, database_url, runs, versions, seconds))
    await common.publish(render(r), out, splice_into, splice)
    log("done")


if __name__ == "__main__":
    parser = common.report_arguments(__doc__)
    parser.add_argument("--poll-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll_server:
        poll_server(args.database_url, args.port)
    elif args.out is None and args.splice_into is None:
        raise SystemExit("--out FILE or --splice-into FILE (e.g. docs/benchmarks.md)")
    else:
        asyncio.run(main(args.out, args.splice_into))
