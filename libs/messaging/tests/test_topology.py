import json
from urllib.parse import quote, urlsplit

import aiohttp

from lf_messaging import declare_consumer_queue, declare_work_queue, definitions, definitions_json
from lf_testing.infra import management_url

CONSUMERS = {"wallet": ["billing.credits_purchased.v1", "billing.order_refunded.v1"], "billing": []}


async def exported_definitions(amqp_url):
    """What RabbitMQ itself reports for the vhost, in the same format ops import."""
    vhost = urlsplit(amqp_url).path.lstrip("/")
    parts = urlsplit(management_url())
    auth = aiohttp.encode_basic_auth(parts.username or "guest", parts.password or "guest")
    url = f"{parts.scheme}://{parts.hostname}:{parts.port}/api/definitions/{quote(vhost, safe='')}"
    async with aiohttp.ClientSession(headers={"Authorization": auth}) as http, http.get(url) as response:
        response.raise_for_status()
        return await response.json()


def comparable(document):
    def strip(items, keep):
        return sorted(
            json.dumps({k: v for k, v in item.items() if k in keep}, sort_keys=True) for item in items
        )

    return {
        "exchanges": strip(
            document["exchanges"], {"name", "type", "durable", "auto_delete", "internal", "arguments"}
        ),
        "queues": strip(document["queues"], {"name", "durable", "auto_delete", "arguments"}),
        "bindings": strip(
            [b for b in document["bindings"] if b["source"]],  # not the default exchange's implicit ones
            {"source", "destination", "destination_type", "routing_key", "arguments"},
        ),
    }


async def test_declared_topology_is_exactly_what_the_ops_definitions_describe(amqp_url, channel):
    for service, keys in CONSUMERS.items():
        await declare_consumer_queue(channel, service, keys, delivery_limit=3)

    exported = await exported_definitions(amqp_url)
    assert comparable(exported) == comparable(definitions(CONSUMERS, delivery_limit=3))


async def test_a_declared_work_queue_is_exactly_what_the_ops_definitions_describe(amqp_url, channel):
    await declare_consumer_queue(channel, "wallet", ["billing.credits_purchased.v1"])
    await declare_work_queue(channel, "platform", ["platform.run_node_queued.v1"])

    exported = await exported_definitions(amqp_url)
    expected = definitions(
        {"wallet": ["billing.credits_purchased.v1"]}, work={"platform": ["platform.run_node_queued.v1"]}
    )
    assert comparable(exported) == comparable(expected)
    queues = {q["name"]: q for q in exported["queues"]}
    assert queues["platform.work"]["arguments"]["x-dead-letter-routing-key"] == "platform.dlq"


async def test_consumer_queues_are_quorum_queues_that_dead_letter_to_their_own_dlq(amqp_url, channel):
    await declare_consumer_queue(channel, "wallet", ["billing.credits_purchased.v1"], delivery_limit=4)

    exported = await exported_definitions(amqp_url)
    queues = {q["name"]: q for q in exported["queues"]}
    assert queues["wallet.events"]["durable"] and queues["wallet.dlq"]["durable"]
    assert queues["wallet.events"]["arguments"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 4,
        "x-dead-letter-exchange": "lf.dead-letter",
        "x-dead-letter-routing-key": "wallet.dlq",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    bindings = {(b["source"], b["routing_key"], b["destination"]) for b in exported["bindings"]}
    assert bindings == {
        ("lf.events", "billing.credits_purchased.v1", "wallet.events"),
        ("lf.dead-letter", "wallet.dlq", "wallet.dlq"),
    }


def test_definitions_json_is_stable_text_for_committing():
    text = definitions_json(CONSUMERS)

    assert text == definitions_json(dict(reversed(CONSUMERS.items())))
    assert text.endswith("\n")
    assert json.loads(text) == definitions(CONSUMERS)
