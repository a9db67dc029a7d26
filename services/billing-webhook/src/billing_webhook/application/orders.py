"""Orders: paid once, refunded cumulatively (the rules are in ``domain.order``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from billing_webhook.application.commands import UseCases
from billing_webhook.domain.order import Order
from billing_webhook.domain.outcome import Outcome
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(Order, "order")


class Orders(UseCases):
    async def pay(
        self,
        order_id: str,
        *,
        lenser_id: UUID,
        credits: int,
        amount_cents: int,
        currency: str,
        variant_id: str,
        test_mode: bool,
        session_id: UUID,
        metadata: dict[str, Any],
    ) -> Outcome:
        async def decide(conn: asyncpg.Connection, order: Order | None) -> tuple[Order, Outcome]:
            order = order or Order()
            outcome = order.pay(
                order_id,
                lenser_id=lenser_id,
                credits=credits,
                amount_cents=amount_cents,
                currency=currency,
                variant_id=variant_id,
                test_mode=test_mode,
                session_id=session_id,
                at=self.clock(),
            )
            return order, outcome

        return await self.commands.run(REPOSITORY, order_id, decide, metadata=metadata)

    async def refund(
        self, order_id: str, refunded_amount_cents: int, total_cents: int, *, metadata: dict[str, Any]
    ) -> Outcome:
        async def decide(conn: asyncpg.Connection, order: Order | None) -> tuple[Order, Outcome]:
            order = order or Order()
            return order, order.refund(order_id, refunded_amount_cents, total_cents, at=self.clock())

        return await self.commands.run(REPOSITORY, order_id, decide, metadata=metadata)
