# ruff: noqa: E501 - long SQL and prose lines
"""Diagnostics: what one command costs (loads, statements)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from common import logger
from wallet_app import (
    REPOSITORY,
    SCHEMA,
    capture,
    reserve,
    wallets_on,
)
from wallet_load import new_wallet

from lf_eventstore.store import load_stream
from lf_pg import create_pool

log = logger("bench")


async def load_cost(pool: asyncpg.Pool, lenser_id: UUID, n: int = 60, rounds: int = 7) -> dict[str, float]:
    """Microseconds per ``REPOSITORY.load`` and per ``load_stream`` (its fetch and decode part): the
    median of ``rounds`` rounds of ``n`` calls each, the two interleaved, to shrug off bursts of other load."""
    stream = REPOSITORY.stream_id(lenser_id)
    loads, fetches = [], []
    async with pool.acquire() as conn:
        head = await load_stream(conn, stream)
        assert head is not None
        for _ in range(20):
            await REPOSITORY.load(conn, lenser_id, lock=False)
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(n):
                await REPOSITORY.load(conn, lenser_id, lock=False)
            loads.append((time.perf_counter() - t) / n)
            t = time.perf_counter()
            for _ in range(n):
                await load_stream(conn, stream)
            fetches.append((time.perf_counter() - t) / n)
    return {
        "version": head.version,
        "replayed": len(head.events),
        "open": len((head.snapshot or {}).get("open", {})),
        "load_us": sorted(loads)[rounds // 2] * 1e6,
        "fetch_us": sorted(fetches)[rounds // 2] * 1e6,
    }


async def statements_per_command(url: str) -> dict[str, Any]:
    """The statements (each one client/server round trip) of one reserve and one capture, as the server
    sees them from an asyncpg query logger, pool reset included."""
    pool = await create_pool(url, SCHEMA, min_size=1, max_size=1)
    try:
        seen: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: seen.append(record.query))
        wallets = wallets_on(pool)
        lenser_id = await new_wallet(wallets)
        await asyncio.sleep(0.01)
        seen.clear()
        reservation, _ = await reserve(wallets, lenser_id, 1, f"count-{uuid4().hex}")
        await asyncio.sleep(0.01)
        reserved = list(seen)
        seen.clear()
        await capture(wallets, reservation.reservation_id, 1)
        await asyncio.sleep(0.01)
        captured = list(seen)
        result = {
            "reserve": len(reserved),
            "capture": len(captured),
            "resets": sum("RESET ALL" in q for q in reserved + captured),
            "reserve_list": reserved,
            "capture_list": captured,
        }
        log(f"statements: reserve {len(reserved)}, capture {len(captured)}")
        return result
    finally:
        await pool.close()
