"""Subscriptions: their state, and the plan's credits once per renewal (rules in ``domain.subscription``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from billing_webhook.application import queries
from billing_webhook.application.use_cases import UseCases
from billing_webhook.domain import errors
from billing_webhook.domain.commands import ObserveSubscription, PayInvoice, RefundInvoice
from billing_webhook.domain.outcome import Outcome
from billing_webhook.domain.subscription import Subscription
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(Subscription, "subscription")


async def plan_credits(conn: asyncpg.Connection, subscription: Subscription) -> int | None:
    """What a renewal of this subscription grants: its plan's pack; None while the plan is unknown."""
    if subscription.plan is None:
        return None
    pack = await queries.credit_pack(conn, subscription.plan)
    if pack is None:
        raise errors.VariantNotFound(subscription.plan)
    return pack.credits_granted


class Subscriptions(UseCases):
    async def observe(self, command: ObserveSubscription, *, metadata: dict[str, Any]) -> Outcome:
        async def decide(conn: asyncpg.Connection, subscription: Subscription) -> Outcome:
            now = self.clock()
            outcome = subscription.observe(
                command.subscription_id,
                command.state,
                lenser_id=command.lenser_id,
                trigger=command.trigger,
                at=now,
            )
            if subscription.invoices_awaiting and subscription.identified:
                credits = await plan_credits(conn, subscription)
                assert credits is not None
                paid = subscription.pay_awaiting_invoices(credits, at=now)
                outcome = Outcome.applied(f"{outcome.detail}; {paid} waiting invoice(s) credited")
            return outcome

        return await self.commands.run(REPOSITORY, command.subscription_id, decide, metadata=metadata)

    async def pay_invoice(self, command: PayInvoice, *, metadata: dict[str, Any]) -> Outcome:
        async def decide(conn: asyncpg.Connection, subscription: Subscription) -> Outcome:
            credits = await plan_credits(conn, subscription) if subscription.identified else None
            return subscription.pay_invoice(
                command.subscription_id, command.invoice, credits=credits, at=self.clock()
            )

        return await self.commands.run(REPOSITORY, command.subscription_id, decide, metadata=metadata)

    async def refund_invoice(self, command: RefundInvoice, *, metadata: dict[str, Any]) -> Outcome:
        async def decide(conn: asyncpg.Connection, subscription: Subscription) -> Outcome:
            return subscription.refund_invoice(
                command.subscription_id,
                command.invoice_id,
                command.refunded_amount_cents,
                command.total_cents,
                at=self.clock(),
            )

        return await self.commands.run(REPOSITORY, command.subscription_id, decide, metadata=metadata)
