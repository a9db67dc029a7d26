"""Many callers on one hot wallet: the stream lock queues them, the rules still hold."""

from __future__ import annotations

import asyncio
from collections import Counter

from lf_testing.waiting import eventually


async def test_200_concurrent_reservations_on_a_wallet_that_affords_50_let_exactly_50_through(wallet, lenser):
    await wallet.grant(lenser, 50)
    responses = await asyncio.gather(*(wallet.reserve(lenser, 1) for _ in range(200)))
    statuses = Counter(r.status for r in responses)
    assert statuses == {201: 50, 402: 150}
    balance = await wallet.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["availableBalance"]) == (50, 50, 0)
    await eventually(wallet.caught_up)
    assert await wallet.trial_balance() == 0
    assert (
        await wallet.db.fetchval("SELECT sum(amount) FROM ledger_postings WHERE account LIKE 'user:%'") == 50
    )
    assert await wallet.db.fetchval("SELECT min(balance - reserved) FROM balances") >= 0


async def test_concurrent_grants_to_a_new_wallet_open_it_once(wallet, lenser):
    responses = await asyncio.gather(*(wallet.grant(lenser, 10) for _ in range(20)))
    assert {r.status for r in responses} == {201}
    assert (await wallet.balance(lenser))["balance"] == 200
    assert await wallet.db.fetchval("SELECT count(*) FROM events WHERE type = 'WalletOpened'") == 1
