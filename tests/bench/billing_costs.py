# ruff: noqa: E501 - long SQL and prose lines
"""Diagnostics: the statements of one delivery at each step, the cost of ``model_for``, nginx's
connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from billing_load import FIRST_ORDER_ID, VARIANT
from common import logger

from billing_webhook.app import SCHEMA as BILLING_SCHEMA
from lf_testing.fakes.lemonsqueezy import encode, order
from wallet_api.app import SCHEMA as WALLET_SCHEMA

log = logger("billing-bench")


INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")


async def statements_per_step(database_url: str, sessions: list[str]) -> dict[str, Any] | None:
    """The SQL statements (each a client/server round trip) of one delivery at each step, as an
    asyncpg query logger sees them, on pools of one connection in this process, with the services
    stopped: the webhook's session lookup and ``deliveries.record``; one pass of billing's delivery
    processor (``catch_up_once``, its batch transaction included) over that delivery alone; the
    wallet consumer's transaction for the ``CreditsPurchasedV1`` it causes (inbox row + handler, as
    lf_messaging's Consumer runs it). A first delivery (``sessions[0]``) warms the connections up; the
    counted one is the first order of a fresh session (``sessions[1]``) for a lenser without a wallet
    yet, as a real purchase is. Built from the services' own classes: None (the reason logged) if
    they have moved."""
    try:
        from billing_webhook.application import queries
        from billing_webhook.application.billing import Billing
        from billing_webhook.application.deliveries import delivery_id
        from billing_webhook.application.processor import DeliveryProcessor
        from billing_webhook.handlers import HANDLERS
        from billing_webhook.integration_events import to_message
        from lf_eventstore.store import EVENT_COLUMNS, to_recorded
        from lf_messaging import MessageContext
        from lf_pg import create_pool
        from lf_projections.follower import catch_up_once
        from wallet_api.application.use_cases import Wallets
        from wallet_api.handlers import HANDLERS as WALLET_HANDLERS

        seen: list[str] = []
        meta = {
            "requestId": "bench",
            "correlationId": "bench",
            "causationId": "bench",
            "actor": "lemonsqueezy",
        }
        bpool = await create_pool(
            database_url, BILLING_SCHEMA, role="billing_webhook", min_size=1, max_size=1
        )
        wpool = await create_pool(database_url, WALLET_SCHEMA, role="wallet_api", min_size=1, max_size=1)
        try:
            for pool in (bpool, wpool):
                async with pool.acquire() as conn:
                    conn.add_query_logger(lambda record: seen.append(record.query))
            billing, wallets = Billing.create(bpool), Wallets(wpool)
            result: dict[str, Any] = {}
            for n, session in enumerate(sessions[:2]):
                order_id = str(FIRST_ORDER_ID - 1 - n)  # below the benchmark's ids
                body = encode(order(order_id, session_id=session, variant_id=VARIANT, total=100))
                payload = json.loads(body)
                seen.clear()
                await queries.session(bpool, UUID(session))
                await billing.deliveries.record(body, "order_created", payload, metadata=meta)
                await asyncio.sleep(0.01)
                accept = list(seen)
                # A transaction open elsewhere on the server holds the reading horizon back, and
                # the processor's own last appends may still lie ahead of its checkpoint: the pass
                # that processes the delivery is the one counted.
                deadline = time.monotonic() + 30
                while True:
                    seen.clear()
                    handled = await catch_up_once(
                        bpool, DeliveryProcessor(billing, handlers=HANDLERS), batch_size=500
                    )
                    await asyncio.sleep(0.01)
                    counted = list(seen)  # before this loop's own check below
                    done = await bpool.fetchval(
                        "SELECT status <> 'pending' FROM deliveries WHERE delivery_id = $1", delivery_id(body)
                    )
                    if done or time.monotonic() > deadline:
                        break
                process = counted
                paid = to_recorded(
                    await bpool.fetchrow(
                        f"SELECT {EVENT_COLUMNS} FROM events WHERE type = 'OrderPaid' AND data->>'order_id' = $1",
                        order_id,
                    )
                )
                event = to_message(paid)  # what billing's relay would publish for it
                context = MessageContext(
                    message_id=str(paid.event_id),
                    routing_key=event.routing_key,
                    correlation_id="bench",
                    causation_id=None,
                    headers={},
                    redelivered=False,
                )
                seen.clear()
                async with wpool.acquire() as conn, conn.transaction():
                    await conn.fetchval(
                        "INSERT INTO inbox (message_id, routing_key) VALUES ($1, $2)"
                        " ON CONFLICT (message_id) DO NOTHING RETURNING true",
                        context.message_id,
                        context.routing_key,
                    )
                    await WALLET_HANDLERS[type(event)](conn, event, context, wallets=wallets)
                await asyncio.sleep(0.01)
                credit = list(seen)
                result = {"accept": accept, "process": process, "credit": credit, "process_events": handled}
            for key in ("accept", "process", "credit"):
                result[key] = [q for q in result[key] if not any(x in q for x in INTROSPECTION)]
        finally:
            await bpool.close()
            await wpool.close()
        log("statements: " + ", ".join(f"{k} {len(result[k])}" for k in ("accept", "process", "credit")))
        return result
    except Exception as error:  # noqa: BLE001 - a diagnostic: the report says it is missing
        log(f"statement count skipped: {type(error).__name__}: {error}")
        return None


def model_for_cost() -> dict[str, float] | None:
    """Microseconds per ``billing_webhook.adapters.lemonsqueezy.payloads.model_for`` call, in this process: steady
    (the parametrised generic it names is in pydantic's cache) and right after a full garbage
    collection (pydantic holds parametrised generics weakly: the collection frees it)."""
    try:
        import gc

        from billing_webhook.adapters.lemonsqueezy.payloads import model_for

        payload = {"meta": {"event_name": "order_created"}}
        for _ in range(100):
            model_for(payload)
        t = time.perf_counter()
        for _ in range(20_000):
            model_for(payload)
        steady = (time.perf_counter() - t) / 20_000 * 1e6
        after = []
        for _ in range(7):
            gc.collect()
            t = time.perf_counter()
            model_for(payload)
            after.append((time.perf_counter() - t) * 1e6)
        return {"steady_us": steady, "after_gc_us": sorted(after)[3]}
    except Exception as error:  # noqa: BLE001 - a diagnostic
        log(f"model_for cost skipped: {type(error).__name__}: {error}")
        return None


def time_wait_to(port: int) -> int:
    """Sockets in TIME_WAIT whose remote port is ``port``: connections to it that the other end
    closed in the last minute (how many connections nginx opened to billing-webhook)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(name).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "06" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count
