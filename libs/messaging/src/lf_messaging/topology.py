"""The RabbitMQ topology every service shares (DESIGN §5), declared in code and exported for ops.

One durable topic exchange carries every integration event; each consumer service owns a durable
quorum queue ``<service>.events`` bound to the routing keys it handles, and a dead-letter queue
``<service>.dlq``. The consumer counts its handler's failures itself and dead-letters a message
past its limit; the queue's ``x-delivery-limit`` is only a high backstop (RabbitMQ counts every
return, including those of a channel that closed during an outage, which must not cost a message).
Dead-lettering is at-least-once: the message leaves ``<service>.events`` only once ``<service>.dlq``
has confirmed it, and a queue that is full refuses new publishes rather than dropping its head.

Declarations and the ops definitions (``definitions``) are built from the same few functions, so
``infra/rabbitmq/definitions.json`` can be generated and a test can prove it is current. Declaring
is idempotent, but RabbitMQ refuses (PRECONDITION_FAILED) a redeclaration with other arguments:
changing ``delivery_limit`` of an existing queue is an ops change (a policy), not a code change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractQueue

EXCHANGE = "lf.events"
DEAD_LETTER_EXCHANGE = "lf.dead-letter"

_EXCHANGE_TYPES = {EXCHANGE: ExchangeType.TOPIC, DEAD_LETTER_EXCHANGE: ExchangeType.DIRECT}


def events_queue(service: str) -> str:
    return f"{service}.events"


def dead_letter_queue(service: str) -> str:
    return f"{service}.dlq"


def work_queue(service: str) -> str:
    """A service's work queue: jobs it publishes to itself (through its relay) for any of its
    replicas to take, competing consumers with manual acks (platform-api's run nodes). Unlike
    ``<service>.events`` it has no inbox: the job's own state makes a redelivery harmless."""
    return f"{service}.work"


# Far above any consumer's own limit: only a message that keeps coming back without its handler
# ever failing (a crash loop, channels closing again and again) reaches it.
DELIVERY_LIMIT_BACKSTOP = 100


def events_queue_arguments(service: str, delivery_limit: int = DELIVERY_LIMIT_BACKSTOP) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": dead_letter_queue(service),
        # at-least-once dead-lettering needs reject-publish: the default drop-head would lose one.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


# Dead letters wait for a human; a quorum queue keeps them through the loss of a node.
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


async def declare_exchanges(channel: AbstractChannel) -> None:
    """Both exchanges, durable. Publishers call this too: publishing to a missing exchange closes
    the channel."""
    for name, kind in _EXCHANGE_TYPES.items():
        await channel.declare_exchange(name, kind, durable=True)


async def declare_consumer_queue(
    channel: AbstractChannel,
    service: str,
    routing_keys: list[str],
    *,
    delivery_limit: int = DELIVERY_LIMIT_BACKSTOP,
) -> AbstractQueue:
    """Declare the exchanges, ``<service>.events`` bound to ``routing_keys`` and ``<service>.dlq``;
    returns the events queue."""
    await declare_exchanges(channel)
    dlq = await channel.declare_queue(
        dead_letter_queue(service), durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
    )
    await dlq.bind(DEAD_LETTER_EXCHANGE, dead_letter_queue(service))
    queue = await channel.declare_queue(
        events_queue(service), durable=True, arguments=events_queue_arguments(service, delivery_limit)
    )
    for key in routing_keys:
        await queue.bind(EXCHANGE, key)
    return queue


async def declare_work_queue(
    channel: AbstractChannel, service: str, routing_keys: list[str]
) -> AbstractQueue:
    """Declare the exchanges and ``<service>.work`` bound to ``routing_keys`` (with the events
    queue's arguments: quorum, the high delivery-limit backstop into ``<service>.dlq``, and
    reject-publish rather than dropping a job when full); returns it. Its publisher declares it
    too, before its first publish, so no job is ever unroutable."""
    await declare_exchanges(channel)
    dlq = await channel.declare_queue(
        dead_letter_queue(service), durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
    )
    await dlq.bind(DEAD_LETTER_EXCHANGE, dead_letter_queue(service))
    queue = await channel.declare_queue(
        work_queue(service), durable=True, arguments=events_queue_arguments(service)
    )
    for key in routing_keys:
        await queue.bind(EXCHANGE, key)
    return queue


def definitions(
    consumers: Mapping[str, Iterable[str]],
    *,
    delivery_limit: int = DELIVERY_LIMIT_BACKSTOP,
    vhost: str = "/",
    work: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """RabbitMQ definitions (the management API's import format) for the exchanges and, per
    consumer service, its queues and bindings: ``{"wallet-api": ["billing.credits_purchased.v1"]}``.

    ``work``: per service, the routing keys of its work queue (``<service>.work``).

    Only topology: users, vhosts and permissions belong to the deployment, not to this library.
    """
    exchanges = [
        {
            "name": name,
            "vhost": vhost,
            "type": kind.value,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for name, kind in _EXCHANGE_TYPES.items()
    ]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []

    def queue(name: str, arguments: dict[str, Any]) -> None:
        queues.append(
            {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}
        )

    def binding(source: str, destination: str, key: str) -> None:
        bindings.append(
            {
                "source": source,
                "vhost": vhost,
                "destination": destination,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
        )

    for service in sorted(consumers):
        queue(events_queue(service), events_queue_arguments(service, delivery_limit))
        queue(dead_letter_queue(service), dict(DEAD_LETTER_QUEUE_ARGUMENTS))
        binding(DEAD_LETTER_EXCHANGE, dead_letter_queue(service), dead_letter_queue(service))
        for key in sorted(set(consumers[service])):
            binding(EXCHANGE, events_queue(service), key)
    for service in sorted(work or {}):
        if service not in consumers:
            queue(dead_letter_queue(service), dict(DEAD_LETTER_QUEUE_ARGUMENTS))
            binding(DEAD_LETTER_EXCHANGE, dead_letter_queue(service), dead_letter_queue(service))
        queue(work_queue(service), events_queue_arguments(service, delivery_limit))
        for key in sorted(set((work or {})[service])):
            binding(EXCHANGE, work_queue(service), key)
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def definitions_json(
    consumers: Mapping[str, Iterable[str]], *, delivery_limit: int = DELIVERY_LIMIT_BACKSTOP, vhost: str = "/"
) -> str:
    """``definitions`` as the stable text to commit (sorted keys, two-space indent, final newline)."""
    document = definitions(consumers, delivery_limit=delivery_limit, vhost=vhost)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
