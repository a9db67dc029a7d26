"""Messaging over RabbitMQ (DESIGN §5): the topology, a broker connection that tolerates outages,
the outbox relay that publishes a service's log, and inbox consumers that apply each message once.

A service wires it in its app factory through ``lf_service`` (two ``cleanup_ctx`` resources: the
broker connection, then its long-running work, started and stopped together)::

    app.cleanup_ctx.append(use_broker(settings.amqp_url))   # connects in the background;
                                                            # app[BROKER], /health reads it
    app.cleanup_ctx.append(use_background_work(settings, SCHEMA, _background))

    def _background(app, work: BackgroundWork) -> None:     # only says what runs
        work.follow(Relay(app[BROKER], to_message=to_message, types=RELAYED_TYPES))
        consumer = Consumer(SERVICE, app[BROKER], app[PG_POOL], handlers,
                            accept_unidentified=settings.env_mode == "development")
        work.consume(consumer)                              # also prunes the inbox
        lf_web.add_health_check(app, "consumer", consumer.health)

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
    declare_work_queue,
    definitions,
    definitions_json,
    events_queue,
    work_queue,
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
    "declare_work_queue",
    "definitions",
    "definitions_json",
    "events_queue",
    "every",
    "publish",
    "work_queue",
]
