"""The credit cost formula of REFERENCE, in exact decimals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from execution_proxy.domain.errors import PricingFailed
from execution_proxy.domain.pricing import MarginPolicy, Metered, Price, Quote, Rounding, credits_for

AT = datetime(2026, 1, 1, tzinfo=UTC)
SONNET = Price(
    AT,
    Decimal("0.003"),
    Decimal("0.015"),
    cache_read_per_1k=Decimal("0.0003"),
    cache_write_per_1k=Decimal("0.00375"),
)


PLAIN = MarginPolicy()


def quote(price: Price = SONNET, policy: MarginPolicy = PLAIN) -> Quote:
    return Quote("tokens", price, policy, credits_per_usd=100)


def test_tokens_cost_their_price_per_thousand_each_at_its_own_rate():
    usd, credits = quote().cost(
        Metered(input_tokens=1000, output_tokens=2000, cache_read_tokens=10_000, cache_write_tokens=1000)
    )
    assert usd == Decimal("0.003") + Decimal("0.030") + Decimal("0.003") + Decimal("0.00375")
    assert credits == 4  # 3.975 credits, rounded up once


def test_markup_and_fixed_fee_apply_before_rounding():
    policy = MarginPolicy(markup_percent=Decimal("20"), fixed_fee_usd=Decimal("0.001"))
    # (0.018 * 1.2 + 0.001) * 100 = 2.26 -> 3
    assert quote(policy=policy).cost(Metered(input_tokens=1000, output_tokens=1000))[1] == 3


@pytest.mark.parametrize(
    ("rounding", "expected"), [(Rounding.CEIL, 3), (Rounding.FLOOR, 2), (Rounding.HALF_UP, 2)]
)
def test_the_rounding_mode_is_the_policys(rounding, expected):
    assert credits_for(Decimal("0.0226"), MarginPolicy(rounding=rounding), 100) == expected


def test_charges_are_clamped_between_the_minimum_and_the_maximum():
    assert credits_for(Decimal("0.000001"), MarginPolicy(min_charge_credits=1), 100) == 1
    assert credits_for(Decimal("50"), MarginPolicy(max_charge_credits=500), 100) == 500


def test_images_cost_per_unit():
    flux = Quote("image", Price(AT, per_unit=Decimal("0.025")), MarginPolicy(), 100)
    assert flux.cost(Metered(units=4)) == (Decimal("0.100"), 10)


def test_the_most_a_request_can_cost_prices_every_prompt_token_at_the_dearest_input_rate():
    # 1000 prompt tokens at the cache-write rate (0.00375) + 1000 output tokens (0.015): 1.875 credits.
    assert quote().most(1000, 1000) == 2


def test_a_price_that_charges_nothing_cannot_be_reserved():
    free = quote(Price(AT), MarginPolicy(min_charge_credits=0))
    with pytest.raises(PricingFailed):
        free.most(100, 100)


def test_the_most_an_image_request_can_cost_is_every_image_it_asks_for():
    flux = Quote("image", Price(AT, per_unit=Decimal("0.025")), MarginPolicy(), 100)
    assert flux.most_units(3) == 8  # 7.5 credits, rounded up once
    free = Quote("image", Price(AT), MarginPolicy(min_charge_credits=0), 100)
    with pytest.raises(PricingFailed):
        free.most_units(4)
