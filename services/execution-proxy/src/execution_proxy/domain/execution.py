"""One execution: what was asked, how it was funded, and how it ended. Appended once it has ended
(started and outcome in one transaction), so the log never holds an execution that is still
running; one that never ends (a crashed replica) leaves only its reservation, which the wallet
expires and releases.

The charge is decided here: the quote's cost of what was used, never more than was reserved
(the excess is recorded as an overrun, not absorbed silently), and nothing for a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Self

from execution_proxy.domain.events import ExecutionFailed, ExecutionStarted, ExecutionSucceeded
from execution_proxy.domain.pricing import Metered, Quote
from execution_proxy.domain.usage import UsageSource
from lf_eventstore import Aggregate, by_name

Funding = Literal["platform_credit", "user_byok_cloud", "sponsored", "service"]
CHARGED: frozenset[str] = frozenset({"platform_credit", "sponsored"})


@dataclass(frozen=True, slots=True)
class Charge:
    cost_usd: Decimal
    credits: int
    overrun: int


def charge(quote: Quote | None, used: Metered, *, reserved: int) -> Charge:
    """What an ended execution costs its payer: nothing when nothing is charged (no quote)."""
    if quote is None:
        return Charge(cost_usd=Decimal(0), credits=0, overrun=0)
    usd, credits = quote.cost(used)
    return Charge(cost_usd=usd, credits=min(credits, reserved), overrun=max(0, credits - reserved))


class Execution(Aggregate):
    event_types = by_name(ExecutionStarted, ExecutionSucceeded, ExecutionFailed)

    def __init__(self) -> None:
        super().__init__()
        self.started: ExecutionStarted | None = None
        self.outcome: ExecutionSucceeded | ExecutionFailed | None = None

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    def succeed(
        self,
        started: ExecutionStarted,
        used: Metered,
        source: UsageSource,
        charged: Charge,
        *,
        latency_ms: int,
        client_disconnected: bool,
        at: datetime,
        cancelled: bool = False,
        cut_short: bool = False,
    ) -> None:
        self._record(started)
        self._record(
            ExecutionSucceeded(
                execution_id=started.execution_id,
                payer_id=started.payer_id,
                reservation_id=started.reservation_id,
                provider=started.provider,
                model=started.model,
                input_tokens=used.input_tokens,
                output_tokens=used.output_tokens,
                cache_read_tokens=used.cache_read_tokens,
                cache_write_tokens=used.cache_write_tokens,
                units=used.units,
                usage_source=source,
                cost_usd=charged.cost_usd,
                credits_charged=charged.credits,
                overrun_credits=charged.overrun,
                client_disconnected=client_disconnected,
                latency_ms=latency_ms,
                finished_at=at,
                cancelled=cancelled,
                cut_short=cut_short,
            )
        )

    def fail(self, started: ExecutionStarted, *, code: str, reason: str, at: datetime) -> None:
        self._record(started)
        self._record(
            ExecutionFailed(
                execution_id=started.execution_id,
                payer_id=started.payer_id,
                reservation_id=started.reservation_id,
                code=code,
                reason=reason[:500],
                finished_at=at,
            )
        )

    def _apply(self, event: Any) -> None:
        if isinstance(event, ExecutionStarted):
            self.started = event
        else:
            self.outcome = event

    def to_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError("an execution is two events: never snapshotted")

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError("an execution is two events: never snapshotted")
