"""LemonSqueezy's events and what handles each. ``HANDLERS`` is the one place that shows who
handles what; any other event is recorded and acknowledged only."""

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from billing_webhook.adapters.lemonsqueezy.payloads import SUBSCRIPTION_EVENTS, Document
from billing_webhook.domain.outcome import Outcome
from billing_webhook.handlers.lemonsqueezy import (
    on_order_created,
    on_order_refunded,
    on_subscription_changed,
    on_subscription_payment_refunded,
    on_subscription_payment_success,
)

Handler = Callable[..., Awaitable[Outcome]]
"""``(conn, document, *, billing, metadata) -> Outcome``"""

HANDLERS: dict[str, Handler] = {
    "order_created": on_order_created,
    "order_refunded": on_order_refunded,
    "subscription_payment_success": on_subscription_payment_success,
    "subscription_payment_refunded": on_subscription_payment_refunded,
    **{name: on_subscription_changed for name in sorted(SUBSCRIPTION_EVENTS)},
}


async def recorded_only(conn: asyncpg.Connection, document: Document[Any], **_: object) -> Outcome:
    return Outcome.ignored(f"{document.meta.event_name} is recorded and acknowledged only")


__all__ = ["HANDLERS", "Handler", "recorded_only"]
