# ruff: noqa: E501 - long SQL lines
"""The system under test: wallet-api and billing-webhook as processes, the broker's queues, the
database's counts, and waiting for the pipeline to drain."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import uuid4

import aiohttp
import asyncpg
from billing_load import CREDITS, VARIANT, Phase
from common import logger, percentile, summary
from cpu import CpuMeter
from report import fmt

from billing_webhook.app import SCHEMA as BILLING_SCHEMA
from lf_testing import infra
from lf_testing.processes import ServiceProcess
from lf_testing.waiting import eventually
from wallet_api.app import SCHEMA as WALLET_SCHEMA

log = logger("billing-bench")
PLATFORM_KEY = "bench-platform-key"
WALLET_QUEUE = "wallet-api.events"


async def rabbitmq_version() -> str:
    """The broker's version, from the management API; "?" without it."""
    parts = urlsplit(infra.management_url())
    auth = {"Authorization": aiohttp.encode_basic_auth(parts.username or "guest", parts.password or "guest")}
    with contextlib.suppress(Exception):
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.get(f"{parts.scheme}://{parts.hostname}:{parts.port}/api/overview") as response,
        ):
            return (await response.json()).get("rabbitmq_version", "?")
    return "?"


async def queue_depth(amqp_url: str, name: str) -> int | None:
    """Messages in the queue (ready + unacknowledged), from the management API; None without it."""
    vhost = urlsplit(amqp_url).path.lstrip("/")
    parts = urlsplit(infra.management_url())
    auth = {"Authorization": aiohttp.encode_basic_auth(parts.username or "guest", parts.password or "guest")}
    url = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"
    try:
        async with aiohttp.ClientSession(headers=auth) as http, http.get(url) as response:
            if response.status != 200:
                return None
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return None
    return int(body.get("messages", 0) or 0)


async def create_sessions(billing_url: str, n: int) -> list[str]:
    """``n`` checkout sessions, each for a lenser of its own, through billing's internal route
    (which asks the fake LemonSqueezy for a checkout, as wallet-api's POST /wallet/checkout does)."""
    sessions: list[str] = []
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(base_url=billing_url) as http:

        async def one() -> None:
            async with sem:
                body = {"lenserId": str(uuid4()), "variantId": VARIANT}
                async with http.post(
                    "/internal/checkouts", json=body, headers={"X-Platform-Api-Key": PLATFORM_KEY}
                ) as response:
                    answer = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"POST /internal/checkouts: {response.status} {answer}")
            sessions.append(answer["data"]["sessionId"])

        await asyncio.gather(*(one() for _ in range(n)))
    return sessions


async def credited_count(admin: asyncpg.Connection) -> int:
    return await admin.fetchval(f"SELECT count(*) FROM {WALLET_SCHEMA}.deposits WHERE source = 'purchase'")


async def recorded_count(admin: asyncpg.Connection) -> int:
    return await admin.fetchval(
        f"SELECT count(*) FROM {BILLING_SCHEMA}.deliveries WHERE event_name = 'order_created'"
    )


async def counts(admin: asyncpg.Connection) -> tuple[int, int, int]:
    """(recorded, processed, credited): order deliveries billing recorded, those its processor has
    processed (committed), and purchases the wallet has credited."""
    row = await admin.fetchrow(
        f"SELECT count(*) AS recorded, count(*) FILTER (WHERE status <> 'pending') AS processed"
        f" FROM {BILLING_SCHEMA}.deliveries WHERE event_name = 'order_created'"
    )
    return row["recorded"], row["processed"], await credited_count(admin)


async def drain(
    admin: asyncpg.Connection, amqp_url: str, phase: Phase | None, deadline_s: float, meter: CpuMeter
) -> float | None:
    """Wait until the wallet has credited every order billing recorded, polling the counts every
    0.25 s; returns the seconds from the phase's end, None at the deadline. Records on the phase the
    backlog at its end (accepted, not yet credited, and where it stood), and how fast billing's
    processor and the wallet worked through it once the deliveries stopped (with the CPU split)."""
    recorded, processed, credited = await counts(admin)
    t0 = time.time()
    if phase is not None:
        phase.backlog = {
            "uncredited": recorded - credited,
            "pending_in_billing": recorded - processed,
            "queued_for_wallet": await queue_depth(amqp_url, WALLET_QUEUE),
        }
    ended = phase.ended_at if phase is not None else t0
    processed_at: float | None = t0 if processed >= recorded else None
    processed0, credited0, seconds = processed, credited, None
    limit = time.monotonic() + deadline_s
    async with meter:
        while True:
            _, processed, credited = await counts(admin)
            now = time.time()
            if processed_at is None and processed >= recorded:
                processed_at = now
            if credited >= recorded:
                seconds = max(0.0, now - ended)
                break
            if time.monotonic() > limit:
                log(f"drain: {recorded - credited} still uncredited after {deadline_s:.0f}s")
                break
            await asyncio.sleep(0.25)
    if phase is not None:
        phase.drain_seconds = seconds
        end = time.time()
        phase.drain = {
            "processed": processed - processed0,
            "processed_per_s": (processed - processed0) / max((processed_at or end) - t0, 1e-3),
            "credited": credited - credited0,
            "credited_per_s": (credited - credited0) / max(end - t0, 1e-3),
            "cpu": meter.split,
        }
        log(
            f"{phase.label}: backlog at the end {phase.backlog}; drained {fmt(seconds, 1)}s after it;"
            f" processed {phase.drain['processed_per_s']:.0f}/s, credited {phase.drain['credited_per_s']:.0f}/s"
            f" meanwhile; {meter.split.text()}"
        )
    return seconds


async def credit_timings(admin: asyncpg.Connection, phases: list[Phase]) -> None:
    """Delivery -> credit for every accepted delivery of each deliveries phase, from the logs: the
    wallet's ``CreditsDeposited`` (reference_id = the order id) and, on the way, billing's
    ``DeliveryReceived`` and ``OrderPaid``. ``recorded_at`` is PostgreSQL's ``now()``: the start of the
    transaction that appended the event. For ``OrderPaid`` that is the start of the delivery
    processor's batch (one transaction for up to a batch of deliveries, all sharing its ``now()``),
    i.e. when the processor picked the delivery up; its effects become visible when the whole batch
    commits."""
    credited = {
        r["k"]: r["at"].timestamp()
        for r in await admin.fetch(
            f"SELECT data->>'reference_id' AS k, recorded_at AS at FROM {WALLET_SCHEMA}.events"
            " WHERE type = 'CreditsDeposited' AND data->>'source' = 'purchase'"
        )
    }
    received = {
        r["k"]: r["at"].timestamp()
        for r in await admin.fetch(
            f"SELECT data->'payload'->'data'->>'id' AS k, recorded_at AS at FROM {BILLING_SCHEMA}.events"
            " WHERE type = 'DeliveryReceived'"
        )
    }
    paid: dict[str, tuple[float, str]] = {
        r["k"]: (r["at"].timestamp(), r["tx"])
        for r in await admin.fetch(
            f"SELECT data->>'order_id' AS k, recorded_at AS at, transaction_id::text AS tx"
            f" FROM {BILLING_SCHEMA}.events WHERE type = 'OrderPaid'"
        )
    }
    all_credits = sorted(credited.values())
    for phase in phases:
        if phase.kind != "deliveries":
            continue
        total, to_record, to_pickup, to_credit, missing = [], [], [], [], 0
        batches: Counter[str] = Counter()
        batch_start: dict[str, float] = {}
        last = 0.0
        for order_id, sent in phase.sent:
            at = credited.get(order_id)
            if at is None:
                missing += 1
                continue
            last = max(last, at)
            total.append((at - sent) * 1000)
            if order_id in received and order_id in paid:
                picked, tx = paid[order_id]
                batches[tx] += 1
                batch_start[tx] = picked
                to_record.append((received[order_id] - sent) * 1000)
                to_pickup.append((picked - received[order_id]) * 1000)
                to_credit.append((at - picked) * 1000)
        in_window = sum(1 for at in all_credits if phase.started_at <= at <= phase.ended_at)
        sizes = sorted(batches.values())
        phase.credit = {
            "accepted": len(phase.sent),
            "credited": len(total),
            "missing": missing,
            "in_window": in_window,
            "per_s_window": in_window / (phase.ended_at - phase.started_at),
            "last_credit_after_end": last - phase.ended_at if last else None,
            "total": summary(total),
            "to_record": summary(to_record),
            "to_pickup": summary(to_pickup),
            "to_credit": summary(to_credit),
            "batches": len(sizes),
            "batch_median": percentile([float(x) for x in sizes], 50) if sizes else float("nan"),
            "batch_max": sizes[-1] if sizes else 0,
        }
        c = phase.credit
        log(
            f"{phase.label}: credited {c['credited']}/{c['accepted']}, {c['per_s_window']:.0f} credits/s in the"
            f" window, delivery->credit p50 {c['total']['p50']:.0f} p99 {c['total']['p99']:.0f} ms;"
            f" {c['batches']} processor batches, median {c['batch_median']:.0f}, max {c['batch_max']}"
        )


async def integrity(admin: asyncpg.Connection, accepted: int) -> dict[str, Any]:
    """What the system holds after the last drain: every accepted delivery recorded once, processed,
    published once and credited once, with the balances to match."""
    facts: dict[str, Any] = {"accepted": accepted}
    facts["deliveries"] = dict(
        await admin.fetch(f"SELECT status, count(*) FROM {BILLING_SCHEMA}.deliveries GROUP BY status")
    )
    facts["orders_paid"] = await admin.fetchval(
        f"SELECT count(*) FROM {BILLING_SCHEMA}.events WHERE type = 'OrderPaid'"
    )
    facts["credited"] = await credited_count(admin)
    facts["balance_sum"] = await admin.fetchval(
        f"SELECT coalesce(sum(balance), 0) FROM {WALLET_SCHEMA}.balances"
    )
    facts["balance_expected"] = facts["credited"] * CREDITS
    facts["inbox"] = await admin.fetchval(f"SELECT count(*) FROM {WALLET_SCHEMA}.inbox")
    return facts


async def healthy(url: str, timeout: float = 30) -> None:
    """Until /health answers 200: the database and the broker both up (the relay needs the broker)."""

    async def ok() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await eventually(ok, timeout=timeout)


class AcceptOnlyProcess(ServiceProcess):
    """billing-webhook as ``serve`` runs it but built with ``create_app(settings, background=False)``
    (the option the composition root offers): the same HTTP routes, pool and middlewares, without the
    delivery processor, the relay and the expiry loop. A diagnostic: what acceptance costs alone."""

    CODE = (
        "from billing_webhook.app import SERVICE, create_app\n"
        "from billing_webhook.settings import BillingSettings\n"
        "from lf_web import configure_logging, run\n"
        "settings = BillingSettings()\n"
        "configure_logging(settings.log_level, SERVICE)\n"
        "run(create_app(settings, background=False), settings)\n"
    )

    async def start(self) -> AcceptOnlyProcess:
        self.process = subprocess.Popen([sys.executable, "-c", self.CODE], env=self.env)
        await healthy(self.url)
        return self
