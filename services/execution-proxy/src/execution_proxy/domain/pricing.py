"""What an execution costs in credits: the formula of REFERENCE ("Credit cost"), in exact decimals.

    credits = round_mode((raw_usd * (1 + markup_percent / 100) + fixed_fee_usd) * credits_per_usd)

clamped to [min_charge_credits, max_charge_credits]. ``raw_usd`` is the provider's list price of
what was used: tokens per thousand (plain input, cache writes, cache reads and output each at their
own price) or units (images). Nothing here is a float, and rounding happens once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Literal

from execution_proxy.domain.errors import PricingFailed

UnitType = Literal["tokens", "image"]
THOUSAND = Decimal(1000)
HUNDRED = Decimal(100)


class Rounding(StrEnum):
    CEIL = "ceil"
    FLOOR = "floor"
    HALF_UP = "half_up"


_ROUNDING = {Rounding.CEIL: ROUND_CEILING, Rounding.FLOOR: ROUND_FLOOR, Rounding.HALF_UP: ROUND_HALF_UP}


@dataclass(frozen=True, slots=True)
class Price:
    """A model's list price from ``effective_from`` on (USD). Cache prices unset: charged as input."""

    effective_from: datetime
    input_per_1k: Decimal = Decimal(0)
    output_per_1k: Decimal = Decimal(0)
    per_unit: Decimal = Decimal(0)
    cache_read_per_1k: Decimal | None = None
    cache_write_per_1k: Decimal | None = None

    @property
    def cache_read(self) -> Decimal:
        return self.input_per_1k if self.cache_read_per_1k is None else self.cache_read_per_1k

    @property
    def cache_write(self) -> Decimal:
        return self.input_per_1k if self.cache_write_per_1k is None else self.cache_write_per_1k


@dataclass(frozen=True, slots=True)
class MarginPolicy:
    markup_percent: Decimal = Decimal(0)
    fixed_fee_usd: Decimal = Decimal(0)
    rounding: Rounding = Rounding.CEIL
    min_charge_credits: int = 1
    max_charge_credits: int | None = None


@dataclass(frozen=True, slots=True)
class Metered:
    """What an execution used (or, for a reservation, the most it can use)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    units: int = 0


def raw_usd(price: Price, unit_type: UnitType, used: Metered) -> Decimal:
    if unit_type == "image":
        return used.units * price.per_unit
    return (
        used.input_tokens * price.input_per_1k
        + used.cache_write_tokens * price.cache_write
        + used.cache_read_tokens * price.cache_read
        + used.output_tokens * price.output_per_1k
    ) / THOUSAND


def credits_for(usd: Decimal, policy: MarginPolicy, credits_per_usd: int) -> int:
    """The formula's rounding and clamping (``PricingFailed`` when the policy admits no charge)."""
    if policy.max_charge_credits is not None and policy.max_charge_credits < policy.min_charge_credits:
        raise PricingFailed("the margin policy's maximum charge is below its minimum")
    if usd < 0 or policy.markup_percent < -HUNDRED:
        raise PricingFailed("a price or markup below zero")
    marked_up = (usd * (1 + policy.markup_percent / HUNDRED) + policy.fixed_fee_usd) * credits_per_usd
    credits = int(marked_up.to_integral_value(rounding=_ROUNDING[policy.rounding]))
    credits = max(credits, policy.min_charge_credits)
    if policy.max_charge_credits is not None:
        credits = min(credits, policy.max_charge_credits)
    return credits


@dataclass(frozen=True, slots=True)
class Quote:
    """A price and the policy that applies to one model, at one moment."""

    unit_type: UnitType
    price: Price
    policy: MarginPolicy
    credits_per_usd: int

    def cost(self, used: Metered) -> tuple[Decimal, int]:
        """(raw USD, credits) of what was used."""
        usd = raw_usd(self.price, self.unit_type, used)
        return usd, credits_for(usd, self.policy, self.credits_per_usd)

    def most(self, prompt_tokens: int, max_output_tokens: int) -> int:
        """The most a token request can cost: every prompt token at the dearest input price (it may
        all be written to a cache), and every output token it may produce."""
        dearest = max(self.price.input_per_1k, self.price.cache_write, self.price.cache_read)
        usd = (prompt_tokens * dearest + max_output_tokens * self.price.output_per_1k) / THOUSAND
        return _reservable(credits_for(usd, self.policy, self.credits_per_usd))

    def most_units(self, units: int) -> int:
        """The most a unit request (images) can cost: every unit it asks for."""
        return _reservable(self.cost(Metered(units=units))[1])

    def sample(self) -> tuple[Decimal, int]:
        """The figure /wallet/pricing shows: 1,000 input and 1,000 output tokens, or one image."""
        if self.unit_type == "image":
            return self.cost(Metered(units=1))
        return self.cost(Metered(input_tokens=1000, output_tokens=1000))


def _reservable(most: int) -> int:
    if most < 1:
        # A charged execution holds at least a credit; a free model is a minimum of 0 with a
        # price of 0, which a wallet cannot reserve: run it on a service's funding instead.
        raise PricingFailed("this price and margin charge nothing: a charged execution needs a minimum")
    return most
