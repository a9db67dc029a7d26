"""Every billing use case in one bundle, on the pool or bound to one connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from billing_webhook.application.catalogue import CreditPacks
from billing_webhook.application.checkouts import CheckoutSessions
from billing_webhook.application.deliveries import Deliveries
from billing_webhook.application.orders import Orders
from billing_webhook.application.subscriptions import Subscriptions
from lf_eventstore import utc_now


@dataclass(frozen=True)
class Billing:
    packs: CreditPacks
    checkouts: CheckoutSessions
    orders: Orders
    subscriptions: Subscriptions
    deliveries: Deliveries

    @classmethod
    def create(
        cls,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime] = utc_now,
        *,
        appended: Callable[[], None] | None = None,
    ) -> Billing:
        return cls(
            *(
                kind(pool, clock, appended=appended)
                for kind in (CreditPacks, CheckoutSessions, Orders, Subscriptions, Deliveries)
            )
        )

    def on(self, conn: asyncpg.Connection, *, savepoints: bool = True) -> Billing:
        """The same use cases inside the caller's transaction on ``conn`` (``savepoints=False``:
        without a savepoint per command, for a caller that retries its whole transaction)."""
        return Billing(*(getattr(self, f.name).on(conn, savepoints=savepoints) for f in fields(self)))
