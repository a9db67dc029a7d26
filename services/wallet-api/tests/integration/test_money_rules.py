"""Money rules that need the whole service: late settlements, refused test-mode purchases.

Here wallet-api runs as production would by default: test-mode payments are not accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lf_contracts.events import CreditsPurchasedV1, ExecutionSettledV1
from lf_testing.waiting import eventually
from wallet_api.settings import WalletSettings


@pytest.fixture
async def settings(settings):
    return settings.model_copy(update={"accept_test_mode_payments": False})


async def expired_reservation(wallet, lenser, amount: int, reference_id: str) -> str:
    response = await wallet.reserve(lenser, amount, reference_id=reference_id, ttlSeconds=1)
    rid = (await response.json())["data"]["reservationId"]

    async def expired() -> bool:
        status = "SELECT status FROM reservations WHERE reservation_id = $1"
        return await wallet.db.fetchval(status, rid) == "expired"

    await eventually(expired, timeout=10)
    return rid


def settlement(lenser, rid: str, credits: int, execution_id: str) -> ExecutionSettledV1:
    return ExecutionSettledV1(
        occurred_at=datetime.now(UTC),
        execution_id=execution_id,
        lenser_id=lenser,
        reservation_id=rid,
        credits_charged=credits,
        provider="local",
        model="local-echo",
    )


async def test_a_settlement_after_its_reservation_expired_is_still_charged(wallet, lenser):
    await wallet.grant(lenser, 100)
    rid = await expired_reservation(wallet, lenser, 40, "exec-late")

    settled = settlement(lenser, rid, 25, "exec-late")
    await wallet.deliver(("late-1", settled), ("late-2", settled))  # a second message id: a resend

    balance = await wallet.balance(lenser)
    assert (balance["balance"], balance["availableBalance"], balance["lifetimeSpent"]) == (75, 75, 25)
    await eventually(wallet.caught_up)
    assert await wallet.trial_balance() == 0
    assert (
        await wallet.db.fetchval(
            "SELECT sum(amount) FROM ledger_postings WHERE account = $1", "platform:revenue"
        )
        == 25
    )
    assert (await wallet.money_report())["uncollected"] == []


async def test_what_the_balance_cannot_cover_is_recorded_as_uncollected_never_below_zero(wallet, lenser):
    await wallet.grant(lenser, 50)
    rid = await expired_reservation(wallet, lenser, 40, "exec-short")
    await wallet.reserve(lenser, 45, reference_id="holds-the-rest")  # 5 left available

    await wallet.deliver(("short-1", settlement(lenser, rid, 40, "exec-short")))

    balance = await wallet.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["availableBalance"]) == (45, 45, 0)
    await eventually(wallet.caught_up)
    assert await wallet.trial_balance() == 0
    owed = await wallet.money_report()
    assert owed["uncollected"] == [{"lenserId": str(lenser), "credits": 35}]
    assert owed["uncollectedTotal"] == 35
    metrics = await (await wallet.api.get("/metrics")).text()
    assert 'wallet_credits_total{movement="uncollected"}' in metrics


async def test_a_test_mode_purchase_is_refused_and_recorded_where_test_payments_are_not_accepted(
    wallet, lenser
):
    def order(order_id: str, test_mode: bool) -> CreditsPurchasedV1:
        return CreditsPurchasedV1(
            occurred_at=datetime.now(UTC),
            order_id=order_id,
            lenser_id=lenser,
            credits=500,
            amount_cents=500,
            currency="USD",
            test_mode=test_mode,
        )

    test_order = order("order-test", True)
    await wallet.deliver(("t-1", test_order), ("t-2", test_order), ("p-1", order("order-paid", False)))

    assert (await wallet.balance(lenser))["balance"] == 500  # the real order only
    refused = (await wallet.money_report())["refusedPurchases"]
    assert [(r["orderId"], r["credits"], r["reason"]) for r in refused] == [("order-test", 500, "test_mode")]
    assert await wallet.db.fetchval("SELECT count(*) FROM events WHERE type = 'PurchaseRefused'") == 1


def test_test_mode_payments_are_accepted_only_in_development_by_default():
    assert WalletSettings(env_mode="development").accept_test_mode_payments is True
    production = WalletSettings(
        env_mode="production", platform_api_key="p" * 32, supabase_jwt_secret="s" * 32
    )
    assert production.accept_test_mode_payments is False
