"""What a Lightning job costs in sats: seed 002's pricing ("Task #6: cost-based work fee pricing"), exact.

The seed's history defines the shape; its numbers (other than the BTC fallback) are ours, listed in
``PricingConfig`` and overridable from the environment (``PricingConfig.from_env``):

    token cost   = in_tokens * input_rate + out_tokens * output_rate      (rates in USD per million)
    infra        = INFRA_MONTHLY_COST_USD / INFRA_REQUESTS_PER_MONTH      (amortised per AI call)
    charge (USD) = (token cost + infra) * (1 + ORIGINATOR_MARGIN_PCT / 100)
    sats         = ceil(charge / btc_price_usd * 100_000_000), at least 1

Before the work, the tokens are estimates by request tier (``estimate_tokens``) and the charge is the
work invoice (``work_fee``); after it, the same formula on the tokens actually used, at the BTC price
locked when the work invoice was made, is the honest charge (``cost_ledger``), and the difference is
owed back (``refund_owed``), never negative.

Money is exact: USD are Decimals computed in a context that raises on any rounding (so a figure shown
to the user is the figure charged), sats are ints, nothing is a float. The one rounding of USD is
the infra share when the division does not terminate: rounded up to ``INFRA_QUANTUM``. Sats are
rounded up once, from the exact quotient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from enum import StrEnum
from fractions import Fraction

SATS_PER_BTC = 100_000_000
MILLION = Decimal(1_000_000)
HUNDRED = Decimal(100)
# A tenth of a nano-dollar: far below a sat at any plausible BTC price (1 sat = $0.001 at $100k).
INFRA_QUANTUM = Decimal("1e-10")
# Exact arithmetic: every USD figure here is a sum of products of finite decimals, so a result
# that needs rounding is a bug, and this context turns it into an error instead of a wrong charge.
_EXACT = Context(prec=80, traps=[Inexact, InvalidOperation])


class Tier(StrEnum):
    """How much answer a request is expected to need, judged by its length."""

    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


@dataclass(frozen=True, slots=True)
class ModelRates:
    """A model family's list price, USD per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal


@dataclass(frozen=True, slots=True)
class PricingConfig:
    """Every number of the pricing, with its default. The env names are in ``ENV_NAMES``."""

    # Anthropic list prices (USD per million tokens): Claude Haiku 3.5 and Claude Sonnet 4.
    haiku: ModelRates = field(default_factory=lambda: ModelRates(Decimal("0.80"), Decimal("4.00")))
    sonnet: ModelRates = field(default_factory=lambda: ModelRates(Decimal("3.00"), Decimal("15.00")))
    # The server's monthly bill shared over the AI calls it serves in a month.
    infra_monthly_cost_usd: Decimal = Decimal("12.00")
    infra_requests_per_month: int = 1000
    originator_margin_pct: Decimal = Decimal("25")
    # Token estimates. Input: the request at about 4 characters a token plus the fixed prompt around
    # it; output: by tier, the tier by the request's length in characters.
    chars_per_token: int = 4
    prompt_overhead_tokens: int = 300
    short_max_chars: int = 280
    medium_max_chars: int = 1000
    output_tokens: Mapping[Tier, int] = field(
        default_factory=lambda: {Tier.SHORT: 500, Tier.MEDIUM: 1000, Tier.LONG: 2000}
    )

    def rates_for(self, model: str) -> ModelRates:
        """A Haiku model at Haiku's rates; any other (Sonnet, ``local``, one we do not know) at
        Sonnet's: never below the dearest model we price, so a guess can only over-charge, and
        over-charging is refunded."""
        return self.haiku if "haiku" in model.lower() else self.sonnet

    @property
    def infra_per_request_usd(self) -> Decimal:
        exact = Fraction(self.infra_monthly_cost_usd) / self.infra_requests_per_month
        return _fraction_up(exact, INFRA_QUANTUM)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PricingConfig:
        """The defaults, overridden by whichever of ``ENV_NAMES`` are set (and not empty)."""
        config = cls()
        changes: dict[str, object] = {}
        rates = {"haiku": config.haiku, "sonnet": config.sonnet}
        for name, (target, kind) in ENV_NAMES.items():
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            value = _parse(name, raw, kind)
            family, _, part = target.partition(".")
            if part:
                rates[family] = replace(rates[family], **{part: value})
            else:
                changes[target] = value
        return replace(config, **rates, **changes)


# env name -> (PricingConfig field, or "family.field" of a ModelRates; what it must be)
ENV_NAMES: dict[str, tuple[str, str]] = {
    "HAIKU_INPUT_USD_PER_MTOK": ("haiku.input_per_mtok", "decimal"),
    "HAIKU_OUTPUT_USD_PER_MTOK": ("haiku.output_per_mtok", "decimal"),
    "SONNET_INPUT_USD_PER_MTOK": ("sonnet.input_per_mtok", "decimal"),
    "SONNET_OUTPUT_USD_PER_MTOK": ("sonnet.output_per_mtok", "decimal"),
    "INFRA_MONTHLY_COST_USD": ("infra_monthly_cost_usd", "decimal"),
    "INFRA_REQUESTS_PER_MONTH": ("infra_requests_per_month", "positive_int"),
    "ORIGINATOR_MARGIN_PCT": ("originator_margin_pct", "decimal"),
}


@dataclass(frozen=True, slots=True)
class WorkFeeBreakdown:
    """The work invoice's price, decided once (seed's ``pricingBreakdown`` plus how it was reached)."""

    model: str
    estimated_input_tokens: int
    estimated_output_tokens: int
    token_cost_usd: Decimal
    infra_cost_usd: Decimal
    estimated_cost_usd: Decimal
    """Token cost + infra + margin: what the invoice charges, in USD."""
    margin_pct: Decimal
    btc_price_usd: Decimal
    """Locked here: the cost ledger converts at this price too."""
    amount_sats: int
    btc_price_is_fallback: bool = False
    """The oracle had no answer and BTC_PRICE_USD_FALLBACK priced the invoice: the job says so."""

    def pricing_breakdown(self) -> dict[str, Decimal | bool]:
        """The seed's ``PricingBreakdown`` (the HTTP layer renders the Decimals as JSON numbers),
        plus ``btcPriceFallback``, ours: whether the price was the fallback rather than the oracle's."""
        return {
            "estimatedCostUsd": self.estimated_cost_usd,
            "marginPct": self.margin_pct,
            "btcPriceUsd": self.btc_price_usd,
            "btcPriceFallback": self.btc_price_is_fallback,
        }


@dataclass(frozen=True, slots=True)
class ActualCost:
    """What AI work really cost, by the tokens it used, at a given BTC price."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    """Raw token cost: no infra, no margin (the seed's ``actualCostUsd``)."""
    charge_usd: Decimal
    """Token cost + infra + margin (the seed's ``actualChargeUsd``)."""
    margin_pct: Decimal
    btc_price_usd: Decimal
    amount_sats: int


class RefundState(StrEnum):
    NOT_APPLICABLE = "not_applicable"
    PENDING = "pending"
    PAID = "paid"


@dataclass(frozen=True, slots=True)
class CostLedger:
    """The honest account after the work (the seed's ``costLedger``)."""

    actual_input_tokens: int
    actual_output_tokens: int
    actual_cost_usd: Decimal
    actual_charge_usd: Decimal
    estimated_cost_usd: Decimal
    actual_amount_sats: int
    work_amount_sats: int
    refund_amount_sats: int
    refund_state: RefundState
    """``pending`` when a refund is owed; the job marks it ``paid`` once sent."""
    margin_pct: Decimal
    btc_price_usd: Decimal

    @property
    def total_tokens(self) -> int:
        return self.actual_input_tokens + self.actual_output_tokens

    def as_json(self, refund_state: RefundState | None = None) -> dict[str, object]:
        """The seed's ``CostLedger`` fields, ``refund_state`` as the job knows it now."""
        return {
            "actualInputTokens": self.actual_input_tokens,
            "actualOutputTokens": self.actual_output_tokens,
            "totalTokens": self.total_tokens,
            "actualCostUsd": self.actual_cost_usd,
            "actualChargeUsd": self.actual_charge_usd,
            "estimatedCostUsd": self.estimated_cost_usd,
            "actualAmountSats": self.actual_amount_sats,
            "workAmountSats": self.work_amount_sats,
            "refundAmountSats": self.refund_amount_sats,
            "refundState": str(refund_state or self.refund_state),
            "marginPct": self.margin_pct,
            "btcPriceUsd": self.btc_price_usd,
        }


def tier_of(request: str, config: PricingConfig) -> Tier:
    length = len(request)
    if length <= config.short_max_chars:
        return Tier.SHORT
    if length <= config.medium_max_chars:
        return Tier.MEDIUM
    return Tier.LONG


def estimate_tokens(request: str, config: PricingConfig) -> tuple[int, int]:
    """(input, output) tokens the work is expected to use: the seed's estimateInputTokens and
    estimateOutputTokens by request tier."""
    input_tokens = config.prompt_overhead_tokens + -(-len(request) // config.chars_per_token)
    return input_tokens, config.output_tokens[tier_of(request, config)]


def usd_to_sats(usd: Decimal, btc_price_usd: Decimal) -> int:
    """``ceil(usd / price * 1e8)``, at least 1 sat: never charge less than the cost, never nothing.
    Computed on exact fractions, so a value a hair over a whole sat is the next sat."""
    _check_price(btc_price_usd)
    if not usd.is_finite() or usd < 0:
        raise ValueError(f"a USD amount must be finite and not negative, not {usd}")
    sats = math.ceil(Fraction(usd) * SATS_PER_BTC / Fraction(btc_price_usd))
    return max(1, sats)


def work_fee(
    request: str,
    model: str,
    btc_price_usd: Decimal,
    config: PricingConfig,
    *,
    btc_price_is_fallback: bool = False,
) -> WorkFeeBreakdown:
    """The work invoice: the estimated tokens of ``request`` on ``model``, priced and converted."""
    _check_price(btc_price_usd)
    input_tokens, output_tokens = estimate_tokens(request, config)
    token_cost = _token_cost(input_tokens, output_tokens, config.rates_for(model))
    infra = config.infra_per_request_usd
    charge = _with_margin(token_cost, infra, config.originator_margin_pct)
    return WorkFeeBreakdown(
        model=model,
        estimated_input_tokens=input_tokens,
        estimated_output_tokens=output_tokens,
        token_cost_usd=token_cost,
        infra_cost_usd=infra,
        estimated_cost_usd=charge,
        margin_pct=config.originator_margin_pct,
        btc_price_usd=btc_price_usd,
        amount_sats=usd_to_sats(charge, btc_price_usd),
        btc_price_is_fallback=btc_price_is_fallback,
    )


def actual_cost(
    input_tokens: int, output_tokens: int, model: str, btc_price_usd: Decimal, config: PricingConfig
) -> ActualCost:
    """The same formula on the tokens a call really used (a session debits this for each call)."""
    _check_price(btc_price_usd)
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    cost = _token_cost(input_tokens, output_tokens, config.rates_for(model))
    charge = _with_margin(cost, config.infra_per_request_usd, config.originator_margin_pct)
    return ActualCost(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        charge_usd=charge,
        margin_pct=config.originator_margin_pct,
        btc_price_usd=btc_price_usd,
        amount_sats=usd_to_sats(charge, btc_price_usd),
    )


def cost_ledger(
    input_tokens: int, output_tokens: int, fee: WorkFeeBreakdown, config: PricingConfig
) -> CostLedger:
    """After the work: its actual cost at the BTC price locked in ``fee`` (the work invoice's), and
    what is owed back. A job that used more than estimated owes nothing back and is not charged
    more: the invoice was the price agreed."""
    actual = actual_cost(input_tokens, output_tokens, fee.model, fee.btc_price_usd, config)
    refund = refund_owed(fee.amount_sats, actual.amount_sats)
    return CostLedger(
        actual_input_tokens=input_tokens,
        actual_output_tokens=output_tokens,
        actual_cost_usd=actual.cost_usd,
        actual_charge_usd=actual.charge_usd,
        estimated_cost_usd=fee.estimated_cost_usd,
        actual_amount_sats=actual.amount_sats,
        work_amount_sats=fee.amount_sats,
        refund_amount_sats=refund,
        refund_state=RefundState.PENDING if refund > 0 else RefundState.NOT_APPLICABLE,
        margin_pct=fee.margin_pct,
        btc_price_usd=fee.btc_price_usd,
    )


def refund_owed(work_amount_sats: int, actual_amount_sats: int) -> int:
    """``workAmountSats - actualAmountSats``, never negative."""
    if work_amount_sats < 0 or actual_amount_sats < 0:
        raise ValueError("sat amounts cannot be negative")
    return max(0, work_amount_sats - actual_amount_sats)


def _token_cost(input_tokens: int, output_tokens: int, rates: ModelRates) -> Decimal:
    with localcontext(_EXACT):
        return (input_tokens * rates.input_per_mtok + output_tokens * rates.output_per_mtok) / MILLION


def _with_margin(token_cost: Decimal, infra: Decimal, margin_pct: Decimal) -> Decimal:
    with localcontext(_EXACT):
        return (token_cost + infra) * (HUNDRED + margin_pct) / HUNDRED


def _fraction_up(value: Fraction, quantum: Decimal) -> Decimal:
    """``value`` as a Decimal: exact when it is a whole number of ``quantum``, else rounded up to one."""
    steps = math.ceil(value / Fraction(quantum))
    with localcontext(_EXACT):
        return _plain(steps * quantum)


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros, and never in exponent form (12, not 1.2E+1)."""
    with localcontext(_EXACT):
        return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _check_price(btc_price_usd: Decimal) -> None:
    if not isinstance(btc_price_usd, Decimal) or not btc_price_usd.is_finite() or btc_price_usd <= 0:
        raise ValueError(f"a BTC price must be a positive finite Decimal, not {btc_price_usd!r}")


def _parse(name: str, raw: str, kind: str) -> Decimal | int:
    try:
        if kind == "positive_int":
            number = int(raw)
            if number <= 0:
                raise ValueError
            return number
        value = Decimal(raw)
    except (ValueError, InvalidOperation):
        wanted = "a positive integer" if kind == "positive_int" else "a decimal"
        raise ValueError(f"{name} must be {wanted}: {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative decimal: {raw!r}")
    return value
