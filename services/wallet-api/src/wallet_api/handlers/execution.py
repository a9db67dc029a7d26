"""execution-proxy's events: settlements capture or release reservations; prices feed /pricing."""

from __future__ import annotations

import asyncpg
import structlog

from lf_contracts.events import ExecutionFailedV1, ExecutionSettledV1, ModelPriceChangedV1
from lf_messaging import MessageContext
from wallet_api.application.commands import Wallets
from wallet_api.domain import errors

log = structlog.get_logger(__name__)


async def on_execution_settled(
    conn: asyncpg.Connection, event: ExecutionSettledV1, context: MessageContext, *, wallets: Wallets
) -> None:
    # A reservation that expired before its settlement came is still charged (Wallets.settle).
    try:
        await wallets.on(conn).settle(
            event.reservation_id, event.credits_charged, metadata=context.event_metadata()
        )
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
        await wallets.on(conn).release(
            event.reservation_id, reason="execution_failed", metadata=context.event_metadata()
        )
    except (errors.ReservationAlreadyCaptured, errors.ReservationNotFound) as refusal:
        log.warning(
            "failure.ignored", reservation_id=str(event.reservation_id), reason=type(refusal).__name__
        )


async def on_model_price_changed(
    conn: asyncpg.Connection, event: ModelPriceChangedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    # Messages may arrive out of order: only a newer price replaces the one we have.
    await conn.execute(
        "INSERT INTO model_prices (key, name, provider, unit_type, sample_cost_usd, sample_cost_credits,"
        " active, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (key) DO UPDATE SET name = $2, provider = $3, unit_type = $4, sample_cost_usd = $5,"
        " sample_cost_credits = $6, active = $7, updated_at = $8 WHERE model_prices.updated_at < $8",
        event.key,
        event.name,
        event.provider,
        event.unit_type,
        event.sample_cost_usd,
        event.sample_cost_credits,
        event.active,
        event.occurred_at,
    )
