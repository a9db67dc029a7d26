"""The one way an integration event goes onto the wire.

The relay uses it, and so do tests that inject messages, so every message carries the same
properties: JSON by alias, persistent, ``message_id`` (what consumers dedupe on), correlation id,
the causation id and request id as headers, and ``user_id``, the publisher's broker login, which
RabbitMQ verifies and consumers check against the contract's owner (``lf_messaging.identity``).
The body is checked by parsing it back with its own model before it leaves: a consumer validates
exactly these bytes, so a payload that would be poison there fails here, before it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel

from lf_contracts.events import IntegrationEvent
from lf_messaging.topology import EXCHANGE

CAUSATION_HEADER = "causation_id"
REQUEST_ID_HEADER = "x-request-id"


def encode(event: IntegrationEvent) -> bytes:
    """The event's wire form, validated the way a consumer will validate it."""
    body = event.model_dump_json(by_alias=True)
    type(event).model_validate_json(body)
    return body.encode()


def build_message(
    event: IntegrationEvent,
    *,
    message_id: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    user_id: str | None = None,
) -> Message:
    all_headers = dict(headers or {})
    if causation_id is not None:
        all_headers[CAUSATION_HEADER] = causation_id
    return Message(
        encode(event),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        correlation_id=correlation_id,
        timestamp=timestamp,
        headers=all_headers,
        type=event.routing_key,
        user_id=user_id,
    )


async def publish(
    channel: AbstractChannel,
    event: IntegrationEvent,
    *,
    message_id: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    timeout: float | None = None,
    user_id: str | None = None,
) -> None:
    """Publish ``event`` to ``lf.events`` under its routing key; returns once the broker confirms
    it (on a publisher-confirms channel), raises if it refuses. Unroutable messages are dropped by
    the broker (``mandatory=False``): a key nobody subscribes to is not an error. ``user_id`` must
    be the channel's login (the broker closes the channel otherwise)."""
    message = build_message(
        event,
        message_id=message_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        headers=headers,
        timestamp=timestamp,
        user_id=user_id,
    )
    exchange = await channel.get_exchange(EXCHANGE, ensure=False)
    await exchange.publish(message, event.routing_key, mandatory=False, timeout=timeout)
