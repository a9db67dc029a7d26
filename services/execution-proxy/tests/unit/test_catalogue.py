"""The catalogue: effective-dated prices, the margin that applies, quotes published on change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from execution_proxy.domain import errors
from execution_proxy.domain.catalogue import GLOBAL, Catalogue, Model
from execution_proxy.domain.events import PriceQuoted
from execution_proxy.domain.pricing import MarginPolicy, Price

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MINI = Model("gpt-4o-mini", "openai", "gpt-4o-mini", "GPT-4o mini", "tokens", 16384)


def catalogue_with_mini() -> Catalogue:
    catalogue = Catalogue()
    catalogue.put_model(MINI, at=NOW, credits_per_usd=100)
    catalogue.set_price(
        "gpt-4o-mini",
        Price(NOW - timedelta(days=1), Decimal("0.00015"), Decimal("0.0006")),
        at=NOW,
        credits_per_usd=100,
    )
    return catalogue


def test_the_newest_price_in_effect_wins_and_a_future_one_waits():
    catalogue = catalogue_with_mini()
    later = Price(NOW + timedelta(days=7), Decimal("1"), Decimal("1"))
    catalogue.set_price("gpt-4o-mini", later, at=NOW, credits_per_usd=100)

    assert catalogue.price_at("gpt-4o-mini", NOW).input_per_1k == Decimal("0.00015")
    assert catalogue.price_at("gpt-4o-mini", NOW + timedelta(days=8)) == later


def test_a_model_without_a_price_in_effect_has_no_quote():
    catalogue = Catalogue()
    catalogue.put_model(MINI, at=NOW, credits_per_usd=100)
    with pytest.raises(errors.PricingNotFound):
        catalogue.quote("gpt-4o-mini", NOW, 100)


def test_a_models_own_margin_beats_the_global_one():
    catalogue = catalogue_with_mini()
    catalogue.set_policy(GLOBAL, MarginPolicy(markup_percent=Decimal(50)), at=NOW, credits_per_usd=100)
    assert catalogue.policy_for("gpt-4o-mini").markup_percent == 50
    catalogue.set_policy("gpt-4o-mini", MarginPolicy(markup_percent=Decimal(5)), at=NOW, credits_per_usd=100)
    assert catalogue.policy_for("gpt-4o-mini").markup_percent == 5


def test_an_inactive_model_or_another_providers_is_not_found():
    catalogue = catalogue_with_mini()
    with pytest.raises(errors.ModelNotFound):
        catalogue.model("gpt-4o-mini", "anthropic")
    catalogue.put_model(replace(MINI, active=False), at=NOW, credits_per_usd=100)
    with pytest.raises(errors.ModelNotFound):
        catalogue.model("gpt-4o-mini")


def test_a_global_margin_change_quotes_every_priced_model_again():
    catalogue = catalogue_with_mini()
    catalogue.put_model(
        Model("unpriced", "openai", "x", "Unpriced", "tokens", 10), at=NOW, credits_per_usd=100
    )
    catalogue.saved(catalogue.version + len(catalogue.pending()))

    catalogue.set_policy(GLOBAL, MarginPolicy(markup_percent=Decimal(100)), at=NOW, credits_per_usd=100)

    quotes = [event for event in catalogue.pending() if isinstance(event, PriceQuoted)]
    assert [quote.key for quote in quotes] == ["gpt-4o-mini"]
    # 1k in + 1k out = $0.00075, doubled = 0.15 credits -> the minimum of 1
    assert (quotes[0].sample_cost_usd, quotes[0].sample_cost_credits) == (Decimal("0.00075"), 1)


def test_a_snapshot_restores_the_catalogue_exactly():
    catalogue = catalogue_with_mini()
    catalogue.set_policy(
        GLOBAL,
        MarginPolicy(markup_percent=Decimal("12.5"), max_charge_credits=9),
        at=NOW,
        credits_per_usd=100,
    )

    restored = Catalogue.from_snapshot(catalogue.to_snapshot())

    assert (restored.models, restored.prices, restored.policies) == (
        catalogue.models,
        catalogue.prices,
        catalogue.policies,
    )
