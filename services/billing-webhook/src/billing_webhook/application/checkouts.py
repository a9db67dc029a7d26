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
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(CheckoutSession, "checkout")


class CheckoutSessions(UseCases):
    async def open(
        self,
        lenser_id: UUID,
        variant_id: str,
        email: str | None,
        *,
        lemonsqueezy: LemonSqueezyClient,
        ttl: timedelta,
        redirect_url: str | None,
        metadata: dict[str, Any],
    ) -> tuple[UUID, Checkout]:
        """A LemonSqueezy checkout for an active pack, then its session; nothing is recorded if
        LemonSqueezy fails, and the lenser never sees a checkout whose session was not recorded."""
        async with self.commands.connection() as conn:
            pack = await queries.credit_pack(conn, variant_id)
        if pack is None or not pack.active:
            raise errors.VariantNotFound(variant_id)
        session_id, now = uuid4(), self.clock()
        request = CheckoutRequest(variant_id, session_id, email, pack.test_mode, now + ttl, redirect_url)
        checkout = await lemonsqueezy.create_checkout(request)

        async def decide(conn: asyncpg.Connection, session: CheckoutSession) -> None:
            session.open(
                session_id,
                lenser_id=lenser_id,
                variant_id=variant_id,
                checkout_id=checkout.checkout_id,
                checkout_url=checkout.url,
                expires_at=request.expires_at,
                test_mode=pack.test_mode,
                at=now,
            )

        await self.commands.run(REPOSITORY, session_id, decide, metadata=metadata)
        return session_id, checkout

    async def complete(self, session_id: UUID, order_id: str, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, session: CheckoutSession) -> None:
            session.complete(order_id, at=self.clock())

        def missing() -> CheckoutSession:
            raise errors.SessionNotFound(session_id)

        await self.commands.run(REPOSITORY, session_id, decide, new=missing, metadata=metadata)

    async def expire_due(self, *, limit: int = 200) -> int:
        """Expire the sessions past their time that no order completed; returns how many."""
        async with self.commands.connection() as conn:
            due = await conn.fetch(
                "SELECT session_id FROM checkout_sessions WHERE status = 'created' AND expires_at <= $1"
                " LIMIT $2",
                self.clock(),
                limit,
            )
        expired = 0
        for row in due:

            async def decide(conn: asyncpg.Connection, session: CheckoutSession) -> bool:
                return session.expire(at=self.clock())

            expired += await self.commands.run(
                REPOSITORY, row["session_id"], decide, metadata={"actor": "billing:expiry"}
            )
        return expired
