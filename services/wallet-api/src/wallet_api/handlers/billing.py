"""Billing's events: paid orders credit the wallet, refunds take the credits back."""

from __future__ import annotations

import asyncpg

from lf_contracts.events import CreditsPurchasedV1, OrderRefundedV1
from lf_messaging import MessageContext
from wallet_api.application.use_cases import Wallets
from wallet_api.domain.commands import CreditPurchase, ReversePurchase


async def on_credits_purchased(
    conn: asyncpg.Connection, event: CreditsPurchasedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    credit = CreditPurchase(
        event.lenser_id,
        event.order_id,
        event.credits,
        description=f"Credit pack ({event.credits} credits)",
        test_mode=event.test_mode,
    )
    await wallets.on(conn).credit_purchase(credit, metadata=context.event_metadata())


async def on_order_refunded(
    conn: asyncpg.Connection, event: OrderRefundedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    reverse = ReversePurchase(event.lenser_id, event.order_id, event.credits_refunded_total)
    await wallets.on(conn).reverse_purchase(reverse, metadata=context.event_metadata())
