"""Who may say what on the broker (DESIGN §5, issue 6 §3).

Every service logs in to RabbitMQ as a user of its own, and a contract belongs to one bounded
context: the first segment of its routing key (``billing.credits_purchased.v1`` is billing's). A
user's context is the first dash-separated part of its name: ``wallet-api`` speaks for wallet,
``billing-webhook`` for billing, and so does ``billing-webhook-t3f9`` (a test's own user: RabbitMQ
users are cluster-wide, so parallel test runs add a random suffix and still follow the rule). The
mapping is a naming convention rather than a table in settings so that a consumer needs no
knowledge of the other services' deployments, and ops create users by the same rule.

Three layers enforce it:

- the broker's topic permissions let a user publish on ``lf.events`` only under ``<context>.``;
- publishers set ``user_id`` to their login, which the broker verifies (a forged one is refused);
- consumers refuse a contract whose context is not the context of the message's ``user_id``.

A user of no context (``guest``, a shared ops login) or a message without ``user_id`` is
"unidentified": refused, unless the consumer runs in development (``make dev`` and the tests
publish as ``guest``).
"""

from __future__ import annotations

import re

from lf_messaging.topology import DEAD_LETTER_EXCHANGE, EXCHANGE, dead_letter_queue, events_queue, work_queue

CONTEXTS = frozenset({"wallet", "billing", "execution", "lightning", "platform"})


def context_of_user(user: str | None) -> str | None:
    """The bounded context a broker user speaks for, or None for a user of no context."""
    if not user:
        return None
    head = user.split("-", 1)[0]
    return head if head in CONTEXTS else None


def owning_context(routing_key: str) -> str:
    """The context a contract belongs to: its routing key's first segment."""
    return routing_key.split(".", 1)[0]


def _names(*names: str) -> str:
    return "^(" + "|".join(re.escape(name) for name in names) + ")$"


def vhost_permissions(service: str) -> dict[str, str]:
    """RabbitMQ permissions (regexes on resource names) for ``service``'s user: declare the two
    exchanges (idempotent; ops creates them) and its own queues, bind its queues, publish to
    ``lf.events``, consume only its own queues (its work queue among them)."""
    own = (events_queue(service), dead_letter_queue(service), work_queue(service))
    return {
        "configure": _names(EXCHANGE, DEAD_LETTER_EXCHANGE, *own),
        "write": _names(EXCHANGE, *own),
        "read": _names(EXCHANGE, DEAD_LETTER_EXCHANGE, *own),
    }


def topic_permissions(service: str) -> dict[str, str]:
    """Topic permissions on ``lf.events``: publish only the routing keys of the service's context."""
    context = context_of_user(service)
    if context is None:
        raise ValueError(f"{service!r} names no context ({', '.join(sorted(CONTEXTS))}-...)")
    return {"exchange": EXCHANGE, "write": f"^{re.escape(context)}\\.", "read": ".*"}
