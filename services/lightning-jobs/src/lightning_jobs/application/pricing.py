"""How a job is priced, behind one small interface the job flow calls: the eval fee (a flat number
of sats from the settings), the work fee quoted before the work (``work_fee``: the BTC price is
locked then) and the actual charge after it (``actual_cost``, from the tokens used, at the locked
price). ``cost_based_pricing`` is seed 002's (``domain/pricing.py`` at the BTC price oracle's price);
a test may build a ``Pricing`` of its own (a fixed one) behind the same interface. The refund owed
after the work (``workAmountSats - actualAmountSats``, never negative) is the job aggregate's to
decide (``Job.completed``).

Amounts in sats are integers; USD amounts and the BTC price are exact decimals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from lightning_jobs.domain import pricing
from lightning_jobs.domain.pricing import PricingConfig


class BtcPrice(Protocol):
    """What the BTC price oracle answers (``adapters/price_oracle.py``'s ``BtcPrice``)."""

    @property
    def usd(self) -> Decimal: ...

    @property
    def fallback(self) -> bool:
        """The oracle had no usable answer: this is ``BTC_PRICE_USD_FALLBACK``."""
        ...


@dataclass(frozen=True)
class WorkQuote:
    amount_sats: int
    estimated_cost_usd: Decimal
    margin_pct: Decimal
    btc_price_usd: Decimal
    btc_price_source: str = "oracle"
    """Where the BTC price came from: ``oracle``, or ``fallback`` when the oracle did not answer."""
    model: str = ""
    """The work model it was priced on: the actual cost after the work is at that model's rates."""


@dataclass(frozen=True)
class ActualCost:
    actual_cost_usd: Decimal
    """The tokens' raw cost (no infrastructure, no margin)."""
    actual_charge_usd: Decimal
    """What is charged: the tokens' cost, infrastructure and margin."""
    actual_amount_sats: int
    """The charge in sats at the quote's locked BTC price."""


@dataclass(frozen=True)
class Pricing:
    eval_fee_sats: int
    work_fee: Callable[[str, str], Awaitable[WorkQuote]]
    """The request and the work model in, the work invoice's quote out (may ask the BTC price
    oracle)."""
    actual_cost: Callable[[WorkQuote, int, int], ActualCost]
    """The quote and the input and output tokens used, the charge out (pure)."""


def cost_based_pricing(
    eval_fee_sats: int,
    config: PricingConfig,
    *,
    btc_price: Callable[[], Awaitable[BtcPrice]],
) -> Pricing:
    """Seed 002's pricing (``domain/pricing.py``): the work invoice is the estimated tokens of the
    request on the work model at the BTC price asked of ``btc_price`` (the oracle) then, and that
    price is locked in the quote (the job's event keeps it), so the actual cost after the work is
    converted at the same price, at the rates of the model the quote names. An oracle with no
    answer prices at its fallback, and the quote says so (``btc_price_source="fallback"``)."""

    async def work_fee(request: str, model: str) -> WorkQuote:
        price = await btc_price()
        fee = pricing.work_fee(request, model, price.usd, config, btc_price_is_fallback=price.fallback)
        return WorkQuote(
            amount_sats=fee.amount_sats,
            estimated_cost_usd=fee.estimated_cost_usd,
            margin_pct=fee.margin_pct,
            btc_price_usd=fee.btc_price_usd,
            btc_price_source="fallback" if fee.btc_price_is_fallback else "oracle",
            model=model,
        )

    def actual_cost(quote: WorkQuote, input_tokens: int, output_tokens: int) -> ActualCost:
        cost = pricing.actual_cost(input_tokens, output_tokens, quote.model, quote.btc_price_usd, config)
        return ActualCost(cost.cost_usd, cost.charge_usd, cost.amount_sats)

    return Pricing(eval_fee_sats, work_fee, actual_cost)
