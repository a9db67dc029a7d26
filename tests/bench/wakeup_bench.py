"""Append-to-follower latency when the writer is another process (issue 8): the wake-up without a
NOTIFY in every append, beside the old trigger in the same run.

On a scratch database, two schemas with the event store: ``wake_new`` as migrated (no trigger: the
writer wakes other processes with ``Wakeup.appended``'s throttled NOTIFY after its commit) and
``wake_old`` with the ``events_notify`` trigger of migrations/0001 re-created (a NOTIFY inside every
appending transaction, the baseline). This process runs one ``FollowerRunner`` per schema (its
default 1 s poll) whose follower notes, for each event, now minus the ``sent_at`` the writer put in
it; a writer subprocess per phase appends one event per transaction (``append`` in a transaction of
its own, then ``appended()`` as ``CommandRunner`` calls it after COMMIT), each on a stream of its own:

- steady: ``BENCH_WAKEUP_RATE`` appends/s (default 200), open loop, for ``BENCH_SECONDS``;
- burst: ``BENCH_WAKEUP_BURST`` concurrent appends (default 50) every 250 ms, for ``BENCH_SECONDS``.

Latency is from the writer's BEGIN to the follower's handling, so it includes the append itself.

Readers read only below the oldest transaction still running in the whole cluster (the reading
horizon), so any long transaction on the server, in any database, delays them whatever wakes them. On
a shared, busy server that swamps what is measured here: by default (``BENCH_WAKEUP_SERVER=private``,
when ``initdb`` is found) the benchmark starts a PostgreSQL cluster of its own on a free port for the
run, with the server's default settings; ``BENCH_WAKEUP_SERVER=shared`` uses DATABASE_URL's server
(common.scratch_database; database ``wakeup_bench`` either way).

``python tests/bench/wakeup_bench.py --out FILE`` (tests/bench/run.sh, ``BENCH_ONLY=wakeup``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import check_local, env_float, env_int, logger, summary
from report import machine_facts
from wakeup_report import render, splice

import lf_eventstore
import lf_projections
from lf_eventstore import NewEvent, RecordedEvent, Wakeup, append
from lf_pg import create_pool, migrate
from lf_projections import FollowerRunner

log = logger("wakeup")

OLD_TRIGGER = """
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify_on_append AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
"""
SCHEMAS = {"new": "wake_new", "old": "wake_old"}


class Latencies:
    """A follower that only notes how long each event took to reach it."""

    types = None

    def __init__(self, phase: str) -> None:
        self.name, self.phase, self.ms = f"latency-{phase}", phase, []
        self.all_seen = asyncio.Event()
        self.expected: int | None = None

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        now = time.time()
        for event in events:
            if event.data.get("phase") == self.phase:  # the schema's earlier phases are passed by
                self.ms.append((now - event.data["sent_at"]) * 1000)
        if self.expected is not None and len(self.ms) >= self.expected:
            self.all_seen.set()


# --- the writer: another process --------------------------------------------------------------


async def write(database_url: str, mode: str, pattern: str, seconds: float, rate: float, burst: int) -> None:
    schema = SCHEMAS[mode]
    pool = await create_pool(database_url, schema, min_size=4, max_size=20)
    wakeup = Wakeup(database_url, schema)
    written = 0

    async def one() -> None:
        nonlocal written
        async with pool.acquire() as conn:
            sent_at = time.time()  # at BEGIN: a wait for a pool connection is the writer's, not ours
            event = NewEvent("Sent", {"sent_at": sent_at, "phase": pattern})
            async with conn.transaction():
                await append(conn, f"w-{os.getpid()}-{written}-{sent_at}", 0, [event])
        written += 1
        if mode == "new":  # what CommandRunner does after each COMMIT; the old trigger notified inside
            wakeup.appended()

    try:
        if mode == "new":
            await asyncio.wait_for(_listening(wakeup), 10)
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        if pattern == "steady":
            n = 0
            while (due := start + n / rate) < start + seconds:
                await asyncio.sleep(max(0.0, due - loop.time()))
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
        else:
            n = 0
            while (due := start + n * 0.25) < start + seconds:
                await asyncio.sleep(max(0.0, due - loop.time()))
                await asyncio.gather(*(one() for _ in range(burst)))
                n += 1
        await asyncio.gather(*tasks)
        took = loop.time() - start
        await asyncio.sleep(0.1)  # the last throttled NOTIFY
    finally:
        await wakeup.close()
        await pool.close()
    print(json.dumps({"written": written, "notifies": wakeup.notifications_sent, "took": took}))


async def _listening(wakeup: Wakeup) -> None:
    await wakeup.wait(wakeup.subscribe(), 0.01)  # starts the connection its NOTIFYs go out on
    await wakeup.listening.wait()


# --- the reader: this process -----------------------------------------------------------------


async def phase(database_url: str, mode: str, pattern: str, seconds: float) -> dict[str, Any]:
    schema = SCHEMAS[mode]
    pool = await create_pool(database_url, schema, min_size=1, max_size=4)
    wakeup = Wakeup(database_url, schema)
    follower = Latencies(pattern)
    runner = FollowerRunner(follower, pool, wakeup, poll_seconds=1.0, lease_seconds=30)
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(wakeup.listening.wait(), 10)
        await asyncio.sleep(0.5)  # caught up with the log so far, waiting
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--writer",
            "--database-url",
            database_url,
            "--mode",
            mode,
            "--pattern",
            pattern,
            "--seconds",
            str(seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await writer.communicate()
        told = json.loads(out.decode().strip().splitlines()[-1])
        follower.expected = told["written"]
        if len(follower.ms) >= told["written"]:
            follower.all_seen.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower.all_seen.wait(), 30)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await wakeup.close()
        await pool.close()
    result = summary(follower.ms) | told
    log(
        f"{mode} {pattern}: {result['n']}/{told['written']} events, p50 {result['p50']:.1f} ms,"
        f" p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms, NOTIFYs sent by the writer"
        f" {told['notifies']}, writer took {told['took']:.1f} s"
    )
    return result


async def main(out: Path | None, splice_into: Path | None) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    check_local(os.environ["DATABASE_URL"])
    seconds = env_float("BENCH_SECONDS", 10)
    r: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": seconds,
        "rate": env_float("BENCH_WAKEUP_RATE", 200),
        "burst": env_int("BENCH_WAKEUP_BURST", 50),
        "interval_ms": lf_eventstore.wakeup.notify_interval_seconds() * 1000,
        "phases": {},
        "load": os.getloadavg()[0],
    }
    async with common.scratch_database("BENCH_WAKEUP_SERVER", "wakeup_bench", log) as (database_url, server):
        r["server"] = server
        admin = await asyncpg.connect(database_url)
        try:
            r["machine"] = await machine_facts(admin, ("synchronous_commit", "fsync"))
        finally:
            await admin.close()
        for schema in SCHEMAS.values():
            await migrate(database_url, schema, [lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS])
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f"SET search_path TO {SCHEMAS['old']}; {OLD_TRIGGER}")
        finally:
            await admin.close()
        for pattern in ("steady", "burst"):
            for mode in ("old", "new"):  # the baseline first, each beside the other
                r["phases"][f"{mode}-{pattern}"] = await phase(database_url, mode, pattern, seconds)
    await common.publish(render(r), out, splice_into, splice)
    log("done")


if __name__ == "__main__":
    parser = common.report_arguments(__doc__)
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=sorted(SCHEMAS), help=argparse.SUPPRESS)
    parser.add_argument("--pattern", choices=("steady", "burst"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        asyncio.run(
            write(
                args.database_url,
                args.mode,
                args.pattern,
                args.seconds,
                env_float("BENCH_WAKEUP_RATE", 200),
                env_int("BENCH_WAKEUP_BURST", 50),
            )
        )
    elif args.out is None and args.splice_into is None:
        raise SystemExit("--out FILE or --splice-into FILE (e.g. docs/benchmarks.md)")
    else:
        asyncio.run(main(args.out, args.splice_into))
