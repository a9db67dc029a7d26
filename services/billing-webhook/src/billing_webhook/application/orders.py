"""Orders: paid once, refunded cumulatively (the rules are in ``domain.order``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from billing_webhook.application.use_cases import UseCases
from billing_webhook.domain.commands import PayOrder, RefundOrder
from billing_webhook.domain.order import Order
from billing_webhook.domain.outcome import Outcome
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(Order, "order")


class Orders(UseCases):
    async def pay(self, command: PayOrder, *, metadata: dict[str, Any]) -> Outcome:
        async def decide(conn: asyncpg.Connection, order: Order) -> Outcome:
            return order.pay(command, at=self.clock())

        return await self.commands.run(REPOSITORY, command.order_id, decide, metadata=metadata)

    async def refund(self, command: RefundOrder, *, metadata: dict[str, Any]) -> Outcome:
        async def decide(conn: asyncpg.Connection, order: Order) -> Outcome:
            return order.refund(command, at=self.clock())

        return await self.commands.run(REPOSITORY, command.order_id, decide, metadata=metadata)
