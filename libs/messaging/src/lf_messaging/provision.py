"""Provisioning a broker: one user per service with only its own rights, and the topology.

``make dev`` runs (once, before the services start)::

    uv run --no-sync python -m lf_messaging.provision dev --amqp-url "$AMQP_URL"

which, through the management API on the broker's host (``RABBITMQ_MANAGEMENT_URL`` overrides;
``rabbitmqctl`` where the plugin is off), logs in as ``AMQP_URL``'s administrative user and

- creates a user per service of ``SERVICES`` (``wallet-api``, ``billing-webhook``, ...) with the
  development password ``<service>-dev``, permissions on its own queues only and topic permissions
  that let it publish only its own context's routing keys (``lf_messaging.identity``);
- declares the exchanges, queues and bindings of ``infra/rabbitmq/definitions.json``. A queue that
  exists with other arguments (declared by an older release: RabbitMQ refuses the redeclaration
  with PRECONDITION_FAILED) is deleted and declared anew when it is empty; when it holds messages
  it is left alone and named in one line, for an operator to drain first.

``python -m lf_messaging.provision url <service> --amqp-url "$AMQP_URL"`` prints the AMQP URL a
service logs in with under ``make dev``. Compose gets the same users from ``definitions.json``
(``python infra/rabbitmq/generate.py`` writes it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
import aiohttp
from aio_pika.exceptions import ChannelPreconditionFailed

from lf_messaging.identity import topic_permissions, vhost_permissions
from lf_messaging.topology import definitions

# Every service of the platform, by the name it logs in with.
SERVICES = ("wallet-api", "execution-proxy", "billing-webhook", "lightning-jobs", "platform-api")


def development_password(service: str) -> str:
    return f"{service}-dev"


def service_url(amqp_url: str, user: str, password: str) -> str:
    """``amqp_url`` (host, port, vhost) with another login."""
    parts = urlsplit(amqp_url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


class BrokerAdmin:
    """Users and permissions, through the management API or, where it is off, ``rabbitmqctl``."""

    def __init__(self, amqp_url: str, management_url: str | None = None) -> None:
        parts = urlsplit(amqp_url)
        self.username = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        self.management_url = management_url or os.environ.get(
            "RABBITMQ_MANAGEMENT_URL", f"http://{parts.hostname or '127.0.0.1'}:15672"
        )

    async def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        parts = urlsplit(self.management_url)
        user = unquote(parts.username) if parts.username else self.username
        password = unquote(parts.password) if parts.password else self.password
        base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
        headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            async with http.request(method, base + path, json=body) as response:
                if response.status >= 400 and not (method == "DELETE" and response.status == 404):
                    text = await response.text()
                    raise RuntimeError(f"RabbitMQ management {method} {path}: {response.status} {text}")

    async def _ctl(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"rabbitmqctl {args[0]}: {stderr.decode().strip()}")

    async def _either(self, method: str, path: str, body: dict[str, Any] | None, *ctl: str) -> None:
        try:
            await self._api(method, path, body)
        except aiohttp.ClientConnectionError:
            if not shutil.which("rabbitmqctl"):
                raise
            await self._ctl(*ctl)

    async def put_user(self, user: str, password: str) -> None:
        try:
            await self._api("PUT", f"/api/users/{quote(user, safe='')}", {"password": password, "tags": ""})
        except aiohttp.ClientConnectionError:
            if not shutil.which("rabbitmqctl"):
                raise
            if await self._ctl_has_user(user):
                await self._ctl("change_password", user, password)
            else:
                await self._ctl("add_user", user, password)

    async def _ctl_has_user(self, user: str) -> bool:
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", "list_users", stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await process.communicate()
        return any(line.split("\t")[0] == user for line in stdout.decode().splitlines())

    async def grant(self, vhost: str, user: str, service: str) -> None:
        """``user`` may do what ``service`` needs, and no more (``lf_messaging.identity``)."""
        rights, topic = vhost_permissions(service), topic_permissions(user)
        path_vhost, path_user = quote(vhost, safe=""), quote(user, safe="")
        await self._either(
            "PUT",
            f"/api/permissions/{path_vhost}/{path_user}",
            rights,
            *("set_permissions", "-p", vhost, user, rights["configure"], rights["write"], rights["read"]),
        )
        await self._either(
            "PUT",
            f"/api/topic-permissions/{path_vhost}/{path_user}",
            topic,
            *("set_topic_permissions", "-p", vhost, user, topic["exchange"], topic["write"], topic["read"]),
        )

    async def delete_user(self, user: str) -> None:
        await self._either("DELETE", f"/api/users/{quote(user, safe='')}", None, "delete_user", user)


async def provision_service_users(
    amqp_url: str, services: Iterable[str] = SERVICES, *, management_url: str | None = None
) -> dict[str, str]:
    """Create (or update) each service's user with its development password and rights in the
    vhost of ``amqp_url``; returns each service's AMQP URL."""
    admin, vhost = BrokerAdmin(amqp_url, management_url), vhost_of(amqp_url)
    urls = {}
    for service in services:
        password = development_password(service)
        await admin.put_user(service, password)
        await admin.grant(vhost, service, service)
        urls[service] = service_url(amqp_url, service, password)
    return urls


async def declare_topology(amqp_url: str, document: Mapping[str, Any]) -> list[str]:
    """Declare the exchanges, queues and bindings of a definitions document; returns one line per
    queue it could not bring up to date (it holds messages under older arguments)."""
    problems: list[str] = []
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for e in document["exchanges"]:
            await channel.declare_exchange(
                e["name"], e["type"], durable=e["durable"], auto_delete=e["auto_delete"],
                internal=e["internal"], arguments=e["arguments"],
            )  # fmt: skip
        declared = set()
        for q in document["queues"]:
            problem = await _declare_queue(connection, q)
            if problem:
                problems.append(problem)
            else:
                declared.add(q["name"])
        channel = await connection.channel()
        for b in document["bindings"]:
            if b["destination"] in declared:
                queue = await channel.get_queue(b["destination"], ensure=False)
                await queue.bind(b["source"], b["routing_key"], arguments=b["arguments"])
    return problems


async def _declare_queue(connection: aio_pika.abc.AbstractConnection, q: Mapping[str, Any]) -> str | None:
    name, arguments = q["name"], q["arguments"]
    durable, auto_delete = q["durable"], q["auto_delete"]
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, durable=durable, auto_delete=auto_delete, arguments=arguments)
        return None
    except ChannelPreconditionFailed:
        pass  # exists with other arguments; the channel is closed now
    channel = await connection.channel()
    existing = await channel.declare_queue(name, passive=True)
    # Quorum queues refuse delete(if_empty=True), and their declare-ok count can lag: a basic.get
    # is the honest probe (a message it finds goes straight back). Provisioning runs before the
    # services start, so nobody consumes meanwhile.
    waiting = await existing.get(fail=False)
    if waiting is not None:
        await waiting.nack(requeue=True)
    if waiting is not None or existing.declaration_result.consumer_count:
        return f"queue {name} holds messages under older arguments: drain it, then provision again"
    await existing.delete(if_unused=False, if_empty=False)
    channel = await connection.channel()
    await channel.declare_queue(name, durable=durable, auto_delete=auto_delete, arguments=arguments)
    return None


def password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256`` form, for definitions files."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def deployment_definitions(
    consumers: Mapping[str, Iterable[str]],
    services: Iterable[str],
    *,
    vhost: str = "/",
    work: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """Everything a broker needs at first boot (compose): the vhost, the topology, and per service
    a user with its development password and only its own rights. Stable text: each salt is
    derived from the user name, so regenerating changes nothing."""
    document = definitions(consumers, vhost=vhost, work=work)
    users, permissions, topics = [], [], []
    for service in sorted(services):
        salt = hashlib.sha256(f"lenserfight-dev:{service}".encode()).digest()[:4]
        users.append(
            {
                "name": service,
                "password_hash": password_hash(development_password(service), salt),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": "",
            }
        )
        permissions.append({"user": service, "vhost": vhost, **vhost_permissions(service)})
        topics.append({"user": service, "vhost": vhost, **topic_permissions(service)})
    return {
        **document,
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topics,
        "parameters": [],
        "global_parameters": [],
        "policies": [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lf_messaging.provision")
    default_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--amqp-url", default=default_url, help="an administrative login")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="the services' users and the topology, for make dev")
    dev.add_argument("--definitions", default="infra/rabbitmq/definitions.json")
    url = commands.add_parser("url", help="the AMQP URL a service logs in with under make dev")
    url.add_argument("service", choices=SERVICES)
    args = parser.parse_args(argv)
    if args.command == "url":
        print(service_url(args.amqp_url, args.service, development_password(args.service)))
        return 0
    try:
        asyncio.run(provision_service_users(args.amqp_url))
        document = json.loads(Path(args.definitions).read_text())
        problems = asyncio.run(declare_topology(args.amqp_url, document))
    except Exception as error:  # noqa: BLE001 - one line, not a traceback
        print(f"broker not provisioned: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
