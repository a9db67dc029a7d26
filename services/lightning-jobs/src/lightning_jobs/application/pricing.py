"""How a job is priced, behind one small interface the job flow calls: the eval fee (a flat number
of sats from the settings), the work fee quoted before the work (``work_fee``: the BTC price is
locked then) and the actual charge after it (``actual_cost``, from the tokens used, at the locked
price). The cost-based pricing of seed 002 (``domain/pricing.py`` and the BTC price oracle) plugs in
as a ``Pricing`` of its own functions; ``flat_pricing`` stands in until it does.

Amounts in sats are integers; USD amounts and the BTC price are exact decimals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class WorkQuote:
    amount_sats: int
    estimated_cost_usd: Decimal
    margin_pct: Decimal
    btc_price_usd: Decimal
    btc_price_source: str = "oracle"
    """Where the BTC price came from: ``oracle``, or ``fallback`` when the oracle did not answer."""


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
    work_fee: Callable[[str], Awaitable[WorkQuote]]
    """The request in, the work invoice's quote out (may ask the BTC price oracle)."""
    actual_cost: Callable[[WorkQuote, int, int], ActualCost]
    """The quote and the input and output tokens used, the charge out (pure)."""


def flat_pricing(eval_fee_sats: int, work_fee_sats: int, btc_price_usd: Decimal) -> Pricing:
    """A fixed work fee, charged in full (no refund is ever owed): a stand-in for development until
    the cost-based pricing is wired."""
    sat_usd = btc_price_usd / Decimal(100_000_000)
    quote = WorkQuote(work_fee_sats, work_fee_sats * sat_usd, Decimal(0), btc_price_usd, "fixed")

    async def work_fee(request: str) -> WorkQuote:
        return quote

    def actual_cost(quote: WorkQuote, input_tokens: int, output_tokens: int) -> ActualCost:
        return ActualCost(quote.estimated_cost_usd, quote.estimated_cost_usd, quote.amount_sats)

    return Pricing(eval_fee_sats, work_fee, actual_cost)
