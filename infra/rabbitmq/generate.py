"""Writes infra/rabbitmq/definitions.json: `uv run python infra/rabbitmq/generate.py`.

What compose's broker loads at first boot (lf_messaging.provision.deployment_definitions): the
exchanges, every consumer's queues and bindings (so nothing published before a consumer's first
start is dropped as unroutable), and one user per service in compose with only its own rights.
tests/infra/test_infra_files.py fails when the file is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from lf_contracts.events import RunNodeQueuedV1
from lf_messaging.provision import deployment_definitions
from wallet_api.handlers import HANDLERS

# The services in docker-compose.yml, and what each consumes (execution-proxy and billing-webhook
# only relay).
CONSUMERS = {"wallet-api": sorted(model.routing_key for model in HANDLERS)}
SERVICES = ("wallet-api", "execution-proxy", "billing-webhook", "lightning-jobs", "platform-api")
# Work queues (<service>.work): platform-api's run workers take run nodes from theirs.
WORK = {"platform-api": [RunNodeQueuedV1.routing_key]}
PATH = Path(__file__).with_name("definitions.json")


def text() -> str:
    return json.dumps(deployment_definitions(CONSUMERS, SERVICES, work=WORK), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    PATH.write_text(text())
