"""Messaging over RabbitMQ (DESIGN §5): the topology, a broker connection that tolerates outages,
the outbox relay that publishes a service's log, and inbox consumers that apply each message once.

A service wires it in its app factory, as two ``cleanup_ctx`` resources: the broker connection,
then its long-running work (``BackgroundWork``: followers, consumer and periodic jobs, started and
stopped together)::

    async with Broker(settings.amqp_url) as broker:   # connects in the background, never blocks
        app[BROKER], app[BROKER_CHECK] = broker, broker.is_up   # /health reads it
        yield

    work = BackgroundWork(pool, dsn=settings.database_url, schema=SCHEMA, role=settings.db_role)
    work.follow(Relay(broker, to_message=to_message, types=RELAYED_TYPES))
    consumer = Consumer(SERVICE, broker, pool, handlers,
                        accept_unidentified=settings.env_mode == "development")
    work.consume(consumer)                    # also prunes the inbox
    lf_web.add_health_check(app, "consumer", consumer.health)
    yield
    await work.stop(deadline=settings.shutdown_timeout_seconds)

and adds ``MIGRATIONS`` (the ``inbox`` table) to its schema's migration sets. The broker users and
their rights are ``lf_messaging.identity`` and ``lf_messaging.provision``; how a database outage is
told from a message's own failure is ``lf_messaging.outage``.
"""

from lf_messaging.background import BackgroundWork, every
from lf_messaging.connection import Broker, BrokerUnavailable, connect
from lf_messaging.consumer import Consumer, Handler, MessageContext
from lf_messaging.publisher import CAUSATION_HEADER, REQUEST_ID_HEADER, publish
from lf_messaging.relay import Relay, ToMessage
from lf_messaging.topology import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    dead_letter_queue,
    declare_consumer_queue,
    declare_exchanges,
    definitions,
    definitions_json,
    events_queue,
)
from lf_pg import MigrationSet

MIGRATIONS = MigrationSet("messaging", "lf_messaging")

__all__ = [
    "CAUSATION_HEADER",
    "DEAD_LETTER_EXCHANGE",
    "EXCHANGE",
    "MIGRATIONS",
    "REQUEST_ID_HEADER",
    "BackgroundWork",
    "Broker",
    "BrokerUnavailable",
    "Consumer",
    "Handler",
    "MessageContext",
    "Relay",
    "ToMessage",
    "connect",
    "dead_letter_queue",
    "declare_consumer_queue",
    "declare_exchanges",
    "definitions",
    "definitions_json",
    "events_queue",
    "every",
    "publish",
]
