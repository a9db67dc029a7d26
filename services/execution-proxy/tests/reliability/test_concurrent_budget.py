"""Budgets hold under concurrency: many executions racing for one wallet never spend more than it holds.

The wallet decides each reservation on its own stream, one at a time, so whichever requests reserve
first are served and the rest are refused before any provider is called. The built-in ``local``
provider with a small ``max_tokens`` makes each execution cost exactly what it reserved (it produces
exactly ``max_tokens`` pieces and states our own counts), so the arithmetic below is exact.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from execution_proxy.domain import tokens
from execution_proxy.domain.pricing import Metered
from execution_proxy.http.execute import EXECUTIONS_PER_MINUTE

PROMPT = "Tell me a story. " * 30  # long enough that one execution costs a few credits, not the minimum
MAX_TOKENS = 20
REQUESTS = 100
AFFORDABLE = 40


def charged_by_stream(text: str) -> int:
    """``credits_charged`` of a stream's ``end`` frame."""
    [end] = [frame for frame in text.split("\n\n") if frame.startswith("event: end")]
    return json.loads(end.split("data: ", 1)[1])["credits_charged"]


@pytest.mark.parametrize("route", ["/execute/wallet", "/execute/stream"])
async def test_a_hundred_concurrent_executions_on_a_wallet_that_affords_forty_serve_exactly_forty(
    route, driver, lenser, catalogue, settings, wallet_db
):
    # 100 requests of one lenser within a minute are exactly the per-lenser limit: all are admitted,
    # so every refusal below is the wallet's, none the rate limiter's.
    assert REQUESTS <= EXECUTIONS_PER_MINUTE
    quote = (await catalogue.current()).quote("local-small", datetime.now(UTC), settings.credits_per_usd)
    prompt_tokens = tokens.count_prompt([PROMPT])
    cost = quote.most(prompt_tokens, MAX_TOKENS)
    assert quote.cost(Metered(input_tokens=prompt_tokens, output_tokens=MAX_TOKENS))[1] == cost
    assert cost > 1  # so a wallet with a credit or two left over would show it
    await driver.fund(lenser, AFFORDABLE * cost)

    async def one_execution() -> tuple[int, str | None, int]:
        response = await driver.execute(
            lenser, route, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": PROMPT}]
        )
        if response.status != 200:  # refused before the first frame: a JSON error, streamed or not
            return response.status, (await response.json())["error"]["code"], 0
        if route == "/execute/stream":
            return response.status, None, charged_by_stream(await response.text())
        return response.status, None, (await response.json())["data"]["creditsCharged"]

    outcomes = await asyncio.gather(*(one_execution() for _ in range(REQUESTS)))

    assert Counter((status, code) for status, code, _ in outcomes) == {
        (200, None): AFFORDABLE,
        (402, "wallet.insufficient_balance"): REQUESTS - AFFORDABLE,
    }
    assert all(charged == cost for status, _, charged in outcomes if status == 200)
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (0, 0)
    assert balance["lifetime_spent"] == AFFORDABLE * cost
    reservations = await wallet_db.fetch(
        "SELECT status, captured FROM reservations WHERE lenser_id = $1", lenser
    )
    assert Counter((r["status"], r["captured"]) for r in reservations) == {("captured", cost): AFFORDABLE}
    assert await driver.trial_balance() == 0
