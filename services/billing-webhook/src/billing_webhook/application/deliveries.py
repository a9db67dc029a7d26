"""Webhook deliveries: recorded once per distinct body, processed from the record, replayable.

A delivery's id is the sha256 of its raw body, and its stream ``delivery-<id>`` starts with
``DeliveryReceived``: a retry or a resend of the same bytes finds the stream and is a duplicate.
Recording commits before the webhook answers 200, so from then on nothing can be lost: the
``DeliveryProcessor`` follows the log and processes it, once, whatever happens to RabbitMQ or to
this process in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from billing_webhook.application.use_cases import UseCases
from billing_webhook.domain import errors
from billing_webhook.domain.delivery import Delivery
from billing_webhook.domain.outcome import Outcome
from billing_webhook.domain.personal_data import split
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(Delivery, "delivery")


def delivery_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


Work = Callable[[asyncpg.Connection, Delivery], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Processed:
    event_name: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Recorded:
    delivery_id: str
    duplicate: bool


class Deliveries(UseCases):
    async def record(
        self, raw: bytes, event_name: str, payload: dict[str, Any], *, metadata: dict[str, Any]
    ) -> Recorded:
        """Record a delivery once. A resend of one whose processing failed asks for it to be
        processed again: LemonSqueezy's "resend" then works after the cause was fixed. The buyer's
        personal data is kept apart from the log, for the retention only (``domain.personal_data``)."""
        key = delivery_id(raw)
        document, personal = split(payload)

        async def decide(conn: asyncpg.Connection, delivery: Delivery) -> bool:
            if delivery.is_new:
                now = self.clock()
                if personal:
                    # A concurrent copy of the same body may be recording it too: it loses on the
                    # stream (ConcurrencyError, retried as a duplicate), not here.
                    await conn.execute(
                        "INSERT INTO delivery_personal_data (delivery_id, data, received_at)"
                        " VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING",
                        key,
                        personal,
                        now,
                    )
                delivery.receive(key, event_name, document, at=now)
                return False
            if delivery.status == "failed":
                delivery.request_replay("resent while failed", at=self.clock())
            return True

        duplicate = await self.commands.run(REPOSITORY, key, decide, metadata=metadata)
        return Recorded(key, duplicate)

    async def replay(self, key: str, *, metadata: dict[str, Any]) -> bool:
        """Ask for the delivery to be processed again; False if it is still waiting to be."""

        async def decide(conn: asyncpg.Connection, delivery: Delivery) -> bool:
            return delivery.request_replay("requested by an operator", at=self.clock())

        return await self.commands.run(REPOSITORY, key, decide, new=_missing(key), metadata=metadata)

    async def process(self, key: str, work: Work, *, metadata: dict[str, Any]) -> Processed | None:
        """Process the delivery in one transaction of its own, once: its stream locked (a runner
        overlapping this one waits, then finds it processed), ``work`` (its handler) run on the
        transaction's connection, and ``DeliveryProcessed`` appended with what ``work`` did, all
        committed together. None if it does not wait to be processed (processed already, or failed).
        """

        async def decide(conn: asyncpg.Connection, delivery: Delivery) -> Processed | None:
            if delivery.status != "pending":
                return None
            outcome = await work(conn, delivery)
            delivery.processed(outcome, at=self.clock())
            return Processed(delivery.event_name, outcome)

        return await self.commands.run(REPOSITORY, key, decide, new=_missing(key), metadata=metadata)

    async def fail(self, key: str, error: str, *, metadata: dict[str, Any]) -> str:
        """Mark the delivery failed; returns its event name."""

        async def decide(conn: asyncpg.Connection, delivery: Delivery) -> str:
            delivery.failed(error, at=self.clock())
            return delivery.event_name

        return await self.commands.run(REPOSITORY, key, decide, new=_missing(key), metadata=metadata)

    async def forget_personal_data(self, retention: timedelta, *, batch: int = 1000) -> int:
        """Delete the personal data of deliveries received longer ago than ``retention`` (on the
        database's clock), a bounded batch per call; returns how many deliveries'."""
        async with self.commands.connection() as conn:
            deleted = await conn.fetch(
                "DELETE FROM delivery_personal_data WHERE delivery_id IN (SELECT delivery_id FROM"
                " delivery_personal_data WHERE received_at < now() - $1::interval LIMIT $2)"
                " RETURNING delivery_id",
                retention,
                batch,
            )
        return len(deleted)


def _missing(key: str) -> Callable[[], Delivery]:
    def refuse() -> Delivery:
        raise errors.DeliveryNotFound(key)

    return refuse
