"""execution-proxy's events: settlements capture or release reservations; prices feed /pricing."""

from __future__ import annotations

import asyncpg
import structlog

from lf_contracts.events import ExecutionFailedV1, ExecutionSettledV1, ModelPriceChangedV1
from lf_messaging import MessageContext
from wallet_api.application.use_cases import Wallets
from wallet_api.domain import errors
from wallet_api.domain.commands import Release, Settle
from wallet_api.projections import model_prices

log = structlog.get_logger(__name__)


async def on_execution_settled(
    conn: asyncpg.Connection, event: ExecutionSettledV1, context: MessageContext, *, wallets: Wallets
) -> None:
    # A reservation that expired before its settlement came is still charged (Wallets.settle).
    try:
        settle = Settle(event.reservation_id, event.credits_charged)
        await wallets.on(conn).settle(settle, metadata=context.event_metadata())
    except (errors.ReservationClosed, errors.ReservationNotFound, errors.IdempotencyConflict) as refusal:
        # Released by its caller (or never existed, or settled for another amount): nothing is
        # owed that we can tell. Keep the trace.
        log.warning(
            "settlement.unchargeable",
            execution_id=event.execution_id,
            reservation_id=str(event.reservation_id),
            credits=event.credits_charged,
            reason=type(refusal).__name__,
        )


async def on_execution_failed(
    conn: asyncpg.Connection, event: ExecutionFailedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    try:
        release = Release(event.reservation_id, reason="execution_failed")
        await wallets.on(conn).release(release, metadata=context.event_metadata())
    except (errors.ReservationAlreadyCaptured, errors.ReservationNotFound) as refusal:
        log.warning(
            "failure.ignored", reservation_id=str(event.reservation_id), reason=type(refusal).__name__
        )


async def on_model_price_changed(
    conn: asyncpg.Connection, event: ModelPriceChangedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    await model_prices.price_changed(conn, event)
