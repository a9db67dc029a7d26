"""The job flow on seed 002's cost-based pricing, the app's own (no pricing passed in), its BTC price
from a fake oracle over HTTP: the work invoice as computed by hand, the price locked on the job, the
fallback said so when the oracle is down, and the refund owed after a cheaper-than-estimated work."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing.fakes.price_oracle import FakePriceOracle
from lightning_jobs.app import create_app
from lightning_jobs.domain.pricing import ENV_NAMES
from lightning_jobs.projections.ledger import refund_owed

REQUEST = "write a haiku about sats"  # 24 characters: a short request
# By hand, with PricingConfig's defaults and WORK_MODEL local-small (priced at Sonnet's $3/$15 per
# million tokens): estimated 300 + 24/4 = 306 tokens in, 500 out (short tier);
# (306 * 3 + 500 * 15) / 1e6 = $0.008418, + infra 12 / 1000 = $0.020418, + 25 % = $0.0255225.
ESTIMATED_USD = 0.0255225
# At $50,000 a bitcoin: 0.0255225 / 50000 * 1e8 = 51.045 sats, rounded up.
WORK_SATS_AT_50K = 52
# At the $100,000 fallback: 25.5225 sats, rounded up.
WORK_SATS_AT_FALLBACK = 26
# The fake execution-proxy's work: 10 tokens in, "echo: write a haiku about sats" = 6 out;
# (10 * 3 + 6 * 15) / 1e6 = $0.00012, + $0.012 infra, + 25 % = $0.01515 = 30.3 sats at $50,000 -> 31.
ACTUAL_SATS_AT_50K = 31


@pytest.fixture
async def oracle() -> AsyncIterator[FakePriceOracle]:
    fake = await FakePriceOracle(price="50000").start()
    yield fake
    await fake.close()


@pytest.fixture
async def priced_api(settings, oracle, monkeypatch) -> AsyncIterator[TestClient]:
    for name in ENV_NAMES:  # the defaults the numbers above were computed with
        monkeypatch.delenv(name, raising=False)
    priced = settings.model_copy(
        update={"btc_price_url": oracle.oracle_url, "btc_price_timeout_seconds": 2.0}
    )
    async with TestClient(TestServer(create_app(priced))) as client:
        yield client


async def test_the_work_invoice_is_the_cost_based_fee_at_the_oracles_price_and_the_cheaper_work_is_refunded(
    priced_api, oracle, driver, ledger
):
    lightning = driver(priced_api)
    created = await lightning.create_job(REQUEST)
    await lightning.pay(created["evalInvoice"])
    quoted = await lightning.until(created["jobId"])

    assert quoted["workInvoice"]["amountSats"] == WORK_SATS_AT_50K
    assert quoted["pricingBreakdown"] == {
        "estimatedCostUsd": ESTIMATED_USD,
        "marginPct": 25.0,
        "btcPriceUsd": 50000.0,
        "btcPriceSource": "oracle",
    }

    oracle.set_price("10")  # after the invoice: the job's price is locked, the work is not repriced
    await lightning.pay(quoted["workInvoice"])
    done = await lightning.until(created["jobId"], ("complete", "failed"))

    assert done["state"] == "complete"
    assert done["costLedger"]["actualInputTokens"] == 10
    assert done["costLedger"]["actualOutputTokens"] == 6
    assert done["costLedger"]["actualCostUsd"] == 0.00012
    assert done["costLedger"]["actualChargeUsd"] == 0.01515
    assert done["costLedger"]["btcPriceUsd"] == 50000.0
    assert done["costLedger"]["actualAmountSats"] == ACTUAL_SATS_AT_50K
    assert done["costLedger"]["workAmountSats"] == WORK_SATS_AT_50K
    assert done["costLedger"]["refundAmountSats"] == WORK_SATS_AT_50K - ACTUAL_SATS_AT_50K
    assert done["costLedger"]["refundState"] == "pending"
    balances = await ledger.balances(created["jobId"])
    assert balances[refund_owed(created["jobId"])] == WORK_SATS_AT_50K - ACTUAL_SATS_AT_50K


async def test_with_the_oracle_down_the_fallback_price_is_used_and_the_job_says_so(
    priced_api, oracle, driver, ledger
):
    oracle.fail_with(503)
    lightning = driver(priced_api)
    created = await lightning.create_job(REQUEST)
    await lightning.pay(created["evalInvoice"])
    quoted = await lightning.until(created["jobId"])

    assert quoted["state"] == "awaiting_work_payment"
    assert quoted["workInvoice"]["amountSats"] == WORK_SATS_AT_FALLBACK
    assert quoted["pricingBreakdown"]["btcPriceUsd"] == 100000.0
    assert quoted["pricingBreakdown"]["btcPriceSource"] == "fallback"


async def test_the_work_runs_on_the_model_its_invoice_was_priced_on_even_after_a_restart_with_another(
    settings, oracle, proxy, driver, ledger, monkeypatch
):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    on_haiku = settings.model_copy(
        update={
            "btc_price_url": oracle.oracle_url,
            "btc_price_timeout_seconds": 2.0,
            "work_model": "claude-3-5-haiku-latest",
        }
    )
    async with TestClient(TestServer(create_app(on_haiku))) as before:
        created = await driver(before).create_job(REQUEST)
        await driver(before).pay(created["evalInvoice"])
        quoted = await driver(before).until(created["jobId"])
    assert quoted["state"] == "awaiting_work_payment"

    restarted = on_haiku.model_copy(update={"work_model": "local-small"})  # WORK_MODEL changed since
    async with TestClient(TestServer(create_app(restarted))) as after:
        await driver(after).pay(quoted["workInvoice"])
        done = await driver(after).until(created["jobId"], ("complete", "failed"))

    (work,) = [call for call in proxy.calls if call["referenceId"].endswith(":work")]
    assert (work["model"], work["provider"]) == ("claude-3-5-haiku-latest", "anthropic")
    # The actual cost at Haiku's rates too: (10 * 0.80 + 6 * 4.00) / 1e6 (Sonnet's would be 0.00012).
    assert done["costLedger"]["actualCostUsd"] == 0.000032
