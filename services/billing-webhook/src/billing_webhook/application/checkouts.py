"""Checkout sessions: opened with LemonSqueezy, completed by their paid order, expired otherwise."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from billing_webhook.adapters.lemonsqueezy import Checkout, CheckoutRequest, LemonSqueezyClient
from billing_webhook.application import queries
from billing_webhook.application.use_cases import UseCases
from billing_webhook.domain import errors
from billing_webhook.domain.checkout import CheckoutSession
from billing_webhook.domain.commands import CompleteCheckout, OpenCheckout
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(CheckoutSession, "checkout")


class CheckoutSessions(UseCases):
    async def open(
        self,
        command: OpenCheckout,
        *,
        lemonsqueezy: LemonSqueezyClient,
        ttl: timedelta,
        redirect_url: str | None,
        metadata: dict[str, Any],
    ) -> tuple[UUID, Checkout]:
        """A LemonSqueezy checkout for an active pack, then its session; nothing is recorded if
        LemonSqueezy fails, and the lenser never sees a checkout whose session was not recorded."""
        async with self.commands.connection() as conn:
            pack = await queries.credit_pack(conn, command.variant_id)
        if pack is None or not pack.active:
            raise errors.VariantNotFound(command.variant_id)
        session_id, now = uuid4(), self.clock()
        request = CheckoutRequest(
            command.variant_id, session_id, command.email, pack.test_mode, now + ttl, redirect_url
        )
        checkout = await lemonsqueezy.create_checkout(request)

        async def decide(conn: asyncpg.Connection, session: CheckoutSession) -> None:
            session.open(
                session_id,
                lenser_id=command.lenser_id,
                variant_id=command.variant_id,
                checkout_id=checkout.checkout_id,
                checkout_url=checkout.url,
                expires_at=request.expires_at,
                test_mode=pack.test_mode,
                at=now,
            )

        await self.commands.run(REPOSITORY, session_id, decide, metadata=metadata)
        return session_id, checkout

    async def complete(self, command: CompleteCheckout, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, session: CheckoutSession) -> None:
            session.complete(command.order_id, at=self.clock())

        def missing() -> CheckoutSession:
            raise errors.SessionNotFound(command.session_id)

        await self.commands.run(REPOSITORY, command.session_id, decide, new=missing, metadata=metadata)

    async def expire_due(self, *, limit: int = 200) -> int:
        """Expire the sessions past their time that no order completed; returns how many."""
        async with self.commands.connection() as conn:
            due = await queries.sessions_due(conn, self.clock(), limit=limit)
        metadata = {"actor": "billing:expiry"}
        expired = 0
        for session_id in due:
            expired += await self.commands.run(REPOSITORY, session_id, self._expire, metadata=metadata)
        return expired

    async def _expire(self, conn: asyncpg.Connection, session: CheckoutSession) -> bool:
        return session.expire(at=self.clock())
