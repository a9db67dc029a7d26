"""``fundingSource: platform_credit`` end to end with no fake between our services: platform-api's
run worker -> the real execution-proxy (``local`` provider), which reserves the most the node can
cost on the real wallet-api -> the proxy's relay publishes the settlement and the wallet's consumer
captures the reservation for what was charged, over RabbitMQ."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from lf_testing.waiting import eventually

LENS = {
    "name": "hello",
    "template": "Say hello to {{who}}",
    "parameters": [{"name": "who", "type": "string", "required": True}],
    "modelId": "local-small",
}
ON_CREDIT = {"params": {"who": "owls"}, "fundingSource": "platform_credit"}
FUNDS = 1000
TOO_LITTLE = 5
"""Less than the most a ``local-small`` node may cost (its 4096 output tokens at 1 credit per 50)."""


async def charged_by_proxy(executions: asyncpg.Pool, run_id: str) -> dict[str, int]:
    """What execution-proxy charged for the run's executions (their reference ids start with it),
    by execution id: the reference the wallet's reservation carries."""
    rows = await executions.fetch(
        "SELECT execution_id, credits_charged FROM executions"
        " WHERE reference_id LIKE $1 || ':%' AND status = 'succeeded'",
        run_id,
    )
    return {str(row["execution_id"]): row["credits_charged"] for row in rows}


async def test_a_run_on_platform_credit_is_charged_what_the_proxy_charged_once_the_wallet_captures(
    platform, run_to_end, lenser_wallet, executions: asyncpg.Pool, lenser: UUID
):
    await lenser_wallet.fund(lenser, FUNDS)
    lens = await platform.lens(lenser, **LENS)

    run = await run_to_end(lens["id"], lenser, ON_CREDIT)

    assert run["status"] == "succeeded", (run["errorCode"], run["errorMessage"])
    assert run["billingStatus"] == "charged"
    assert run["creditCost"] > 0
    [(execution_id, charged)] = (await charged_by_proxy(executions, run["id"])).items()
    assert charged == run["creditCost"]
    balance: dict = {}
    spends: list[dict] = []

    async def captured() -> bool:  # the balance at once, the ledger's transaction behind its follower
        balance.update(await lenser_wallet.balance(lenser))
        spends[:] = [t for t in await lenser_wallet.transactions(lenser) if t["txType"] == "spend"]
        return balance["reserved"] == 0 and balance["balance"] < FUNDS and bool(spends)

    await eventually(captured, timeout=20)
    assert FUNDS - balance["balance"] == run["creditCost"]
    assert balance["lifetimeSpent"] == run["creditCost"]
    [spend] = spends
    assert (spend["amount"], spend["referenceId"]) == (run["creditCost"], execution_id)


async def test_a_lenser_short_of_credit_gets_the_wallets_code_and_is_charged_nothing(
    platform, run_to_end, run_events, lenser_wallet, executions: asyncpg.Pool, lenser: UUID
):
    await lenser_wallet.fund(lenser, TOO_LITTLE)
    lens = await platform.lens(lenser, **LENS)

    run = await run_to_end(lens["id"], lenser, ON_CREDIT)

    assert run["status"] == "failed" and run["errorCode"] == "node_failed"
    [failed] = [payload for kind, payload in await run_events(run["id"], lenser) if kind == "node.failed"]
    assert failed["errorCode"] == "wallet.insufficient_balance", failed
    assert failed["credits"] == 0
    assert run["creditCost"] == 0 and run["billingStatus"] == "free"
    assert run["artifacts"] == []
    assert await charged_by_proxy(executions, run["id"]) == {}
    balance = await lenser_wallet.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["lifetimeSpent"]) == (TOO_LITTLE, 0, 0)
    kinds: list[str] = []

    async def ledger_shows_the_grant() -> bool:  # the ledger's transactions trail behind its follower
        kinds[:] = [t["txType"] for t in await lenser_wallet.transactions(lenser)]
        return bool(kinds)

    await eventually(ledger_shows_the_grant, timeout=20)
    assert kinds == ["deposit"]
