"""Seed 002's pricing, with every expected value worked out by hand in the comments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lightning_jobs.domain.pricing import (
    ModelRates,
    PricingConfig,
    RefundState,
    Tier,
    actual_cost,
    cost_ledger,
    estimate_tokens,
    refund_owed,
    tier_of,
    usd_to_sats,
    work_fee,
)

DEFAULTS = PricingConfig()
BTC_100K = Decimal("100000")
SHORT_REQUEST = "a" * 100  # short tier: input 300 + ceil(100 / 4) = 325 tokens, output 500


def test_defaults_are_the_documented_rates() -> None:
    assert DEFAULTS.haiku == ModelRates(Decimal("0.80"), Decimal("4.00"))
    assert DEFAULTS.sonnet == ModelRates(Decimal("3.00"), Decimal("15.00"))
    assert DEFAULTS.originator_margin_pct == Decimal(25)
    assert DEFAULTS.infra_per_request_usd == Decimal("0.012")  # $12 a month over 1000 calls


@pytest.mark.parametrize(
    ("length", "tier", "tokens"),
    [
        (0, Tier.SHORT, (300, 500)),
        (1, Tier.SHORT, (301, 500)),  # a started token counts
        (280, Tier.SHORT, (370, 500)),  # the short tier's last length
        (281, Tier.MEDIUM, (371, 1000)),
        (1000, Tier.MEDIUM, (550, 1000)),
        (1001, Tier.LONG, (551, 2000)),
    ],
)
def test_token_estimates_follow_the_request_tier(length: int, tier: Tier, tokens: tuple[int, int]) -> None:
    request = "x" * length
    assert tier_of(request, DEFAULTS) is tier
    assert estimate_tokens(request, DEFAULTS) == tokens


def test_work_fee_prices_estimated_tokens_infra_and_margin_at_the_btc_price() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, DEFAULTS)
    # tokens: (325 * 3 + 500 * 15) / 1e6 = 8475 / 1e6; + infra 0.012 = 0.020475; * 1.25
    assert fee.token_cost_usd == Decimal("0.008475")
    assert fee.infra_cost_usd == Decimal("0.012")
    assert fee.estimated_cost_usd == Decimal("0.02559375")
    # 0.02559375 USD / 100000 USD per BTC = 25.59375 sats -> 26
    assert fee.amount_sats == 26
    assert (fee.estimated_input_tokens, fee.estimated_output_tokens) == (325, 500)
    assert fee.pricing_breakdown() == {
        "estimatedCostUsd": Decimal("0.02559375"),
        "marginPct": Decimal(25),
        "btcPriceUsd": BTC_100K,
        "btcPriceFallback": False,
    }


def test_a_fee_priced_at_the_fallback_btc_price_says_so() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, DEFAULTS, btc_price_is_fallback=True)
    assert fee.pricing_breakdown()["btcPriceFallback"] is True


def test_haiku_is_priced_at_haikus_rates() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-3-5-haiku-latest", BTC_100K, DEFAULTS)
    # (325 * 0.8 + 500 * 4) / 1e6 = 0.00226; + 0.012 = 0.01426; * 1.25 = 0.017825 -> 17.825 sats -> 18
    assert fee.estimated_cost_usd == Decimal("0.017825")
    assert fee.amount_sats == 18


def test_a_model_we_do_not_know_is_priced_at_the_dearest_rates() -> None:
    local = work_fee(SHORT_REQUEST, "local-small", BTC_100K, DEFAULTS)
    sonnet = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, DEFAULTS)
    assert local.estimated_cost_usd == sonnet.estimated_cost_usd


def test_the_fee_converts_at_a_fractional_btc_price_rounding_up() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", Decimal("67187.12"), DEFAULTS)
    # 0.02559375 * 1e8 / 67187.12 = 2559375 / 67187.12 = 38.0931... -> 39
    assert fee.amount_sats == 39


@pytest.mark.parametrize(
    ("usd", "price", "sats"),
    [
        ("0.001", "100000", 1),  # exactly one sat
        ("0.00100001", "100000", 2),  # a hair over one sat is two
        ("0.002", "100000", 2),  # exactly two: not rounded past
        ("0", "100000", 1),  # nothing still costs the minimum
        ("0.0000001", "100000", 1),  # a hundredth of a sat: the minimum
        ("1", "3", 33333334),  # 33,333,333.33... never terminates: up
        ("1", "100000000", 1),  # exactly one sat at an absurd price
        ("100", "100000", 100000),
    ],
)
def test_usd_to_sats_rounds_up_to_a_whole_sat_and_at_least_one(usd: str, price: str, sats: int) -> None:
    assert usd_to_sats(Decimal(usd), Decimal(price)) == sats


@pytest.mark.parametrize("price", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")])
def test_a_btc_price_that_is_not_positive_and_finite_is_refused(price: Decimal) -> None:
    with pytest.raises(ValueError, match="BTC price"):
        usd_to_sats(Decimal(1), price)
    with pytest.raises(ValueError, match="BTC price"):
        work_fee(SHORT_REQUEST, "claude-sonnet-4", price, DEFAULTS)


def test_a_negative_usd_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="USD amount"):
        usd_to_sats(Decimal("-0.01"), BTC_100K)


def test_the_cost_ledger_charges_actual_tokens_at_the_locked_price_and_owes_the_rest() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, DEFAULTS)  # 26 sats
    ledger = cost_ledger(200, 100, fee, DEFAULTS)
    # (200 * 3 + 100 * 15) / 1e6 = 0.0021 raw; + 0.012 = 0.0141; * 1.25 = 0.017625 -> 17.625 -> 18 sats
    assert ledger.actual_cost_usd == Decimal("0.0021")
    assert ledger.actual_charge_usd == Decimal("0.017625")
    assert ledger.actual_amount_sats == 18
    assert ledger.work_amount_sats == 26
    assert ledger.refund_amount_sats == 8
    assert ledger.refund_state is RefundState.PENDING
    assert ledger.total_tokens == 300
    assert ledger.as_json() == {
        "actualInputTokens": 200,
        "actualOutputTokens": 100,
        "totalTokens": 300,
        "actualCostUsd": Decimal("0.0021"),
        "actualChargeUsd": Decimal("0.017625"),
        "estimatedCostUsd": Decimal("0.02559375"),
        "actualAmountSats": 18,
        "workAmountSats": 26,
        "refundAmountSats": 8,
        "refundState": "pending",
        "marginPct": Decimal(25),
        "btcPriceUsd": BTC_100K,
    }
    assert ledger.as_json(RefundState.PAID)["refundState"] == "paid"


def test_the_ledger_uses_the_btc_price_locked_with_the_work_invoice() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", Decimal("50000"), DEFAULTS)
    # 0.02559375 * 1e8 / 50000 = 51.1875 -> 52 sats; actual 0.017625 * 1e8 / 50000 = 35.25 -> 36
    ledger = cost_ledger(200, 100, fee, DEFAULTS)
    assert (fee.amount_sats, ledger.actual_amount_sats, ledger.refund_amount_sats) == (52, 36, 16)
    assert ledger.btc_price_usd == Decimal("50000")


def test_work_that_cost_more_than_its_invoice_owes_nothing_back_and_charges_nothing_more() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, DEFAULTS)  # 26 sats
    ledger = cost_ledger(2000, 3000, fee, DEFAULTS)
    # (2000 * 3 + 3000 * 15) / 1e6 = 0.051; + 0.012 = 0.063; * 1.25 = 0.07875 -> 78.75 -> 79 sats
    assert ledger.actual_amount_sats == 79
    assert ledger.work_amount_sats == 26
    assert ledger.refund_amount_sats == 0
    assert ledger.refund_state is RefundState.NOT_APPLICABLE


def test_an_exact_estimate_owes_nothing_back() -> None:
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, DEFAULTS)
    ledger = cost_ledger(fee.estimated_input_tokens, fee.estimated_output_tokens, fee, DEFAULTS)
    assert ledger.actual_amount_sats == fee.amount_sats
    assert ledger.refund_amount_sats == 0


def test_actual_cost_of_a_call_with_no_tokens_is_infra_and_margin() -> None:
    cost = actual_cost(0, 0, "claude-3-5-haiku-latest", BTC_100K, DEFAULTS)
    # 0 + 0.012 = 0.012; * 1.25 = 0.015 -> exactly 15 sats
    assert (cost.cost_usd, cost.charge_usd, cost.amount_sats) == (Decimal(0), Decimal("0.015"), 15)


def test_negative_token_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="token"):
        actual_cost(-1, 0, "claude-sonnet-4", BTC_100K, DEFAULTS)


@pytest.mark.parametrize(("work", "actual", "owed"), [(26, 18, 8), (26, 26, 0), (26, 79, 0), (1, 0, 1)])
def test_refund_owed_is_the_difference_never_negative(work: int, actual: int, owed: int) -> None:
    assert refund_owed(work, actual) == owed


def test_an_infra_share_that_does_not_terminate_is_rounded_up_to_a_tenth_of_a_nanodollar() -> None:
    config = PricingConfig(infra_monthly_cost_usd=Decimal(10), infra_requests_per_month=3)
    assert config.infra_per_request_usd == Decimal("3.3333333334")


def test_every_rate_can_be_overridden_from_the_environment() -> None:
    config = PricingConfig.from_env(
        {
            "HAIKU_INPUT_USD_PER_MTOK": "1",
            "HAIKU_OUTPUT_USD_PER_MTOK": "5",
            "SONNET_INPUT_USD_PER_MTOK": "2.5",
            "SONNET_OUTPUT_USD_PER_MTOK": "12.5",
            "INFRA_MONTHLY_COST_USD": "30",
            "INFRA_REQUESTS_PER_MONTH": "10000",
            "ORIGINATOR_MARGIN_PCT": "10",
            "UNRELATED": "ignored",
        }
    )
    assert config.haiku == ModelRates(Decimal(1), Decimal(5))
    assert config.sonnet == ModelRates(Decimal("2.5"), Decimal("12.5"))
    assert config.infra_per_request_usd == Decimal("0.003")
    assert config.originator_margin_pct == Decimal(10)
    fee = work_fee(SHORT_REQUEST, "claude-sonnet-4", BTC_100K, config)
    # (325 * 2.5 + 500 * 12.5) / 1e6 = 0.0070625; + 0.003 = 0.0100625; * 1.1 = 0.01106875 -> 11.06875 -> 12
    assert fee.estimated_cost_usd == Decimal("0.01106875")
    assert fee.amount_sats == 12


def test_an_empty_variable_keeps_the_default() -> None:
    assert PricingConfig.from_env({"ORIGINATOR_MARGIN_PCT": " "}) == DEFAULTS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORIGINATOR_MARGIN_PCT", "abc"),
        ("ORIGINATOR_MARGIN_PCT", "-5"),
        ("SONNET_INPUT_USD_PER_MTOK", "NaN"),
        ("INFRA_REQUESTS_PER_MONTH", "0"),
        ("INFRA_REQUESTS_PER_MONTH", "1.5"),
    ],
)
def test_a_malformed_variable_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        PricingConfig.from_env({name: value})
