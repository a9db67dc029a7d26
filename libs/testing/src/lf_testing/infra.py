"""Where the tests' PostgreSQL and RabbitMQ come from.

``DATABASE_URL`` and ``AMQP_URL`` name running servers (this machine, CI). Without them, the first
test that needs one starts it with testcontainers, once per session. Every test then gets a fresh
database and a fresh vhost on those servers, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
import warnings
from functools import cache
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg


@cache
def postgres_admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    with warnings.catch_warnings():  # the package is moving its modules; either name works
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.postgres import PostgresContainer  # only where no server is given

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    return container.get_connection_url()


@cache
def rabbitmq_admin_url() -> str:
    url = os.environ.get("AMQP_URL")
    if url:
        return url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer("rabbitmq:3.13-management")
    container.start()
    host = container.get_container_host_ip()
    os.environ["RABBITMQ_MANAGEMENT_URL"] = f"http://guest:guest@{host}:{container.get_exposed_port(15672)}"
    return f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/"


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, parts.fragment))


async def create_database() -> str:
    admin = postgres_admin_url()
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_path(admin, name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(postgres_admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def management_url() -> str:
    explicit = os.environ.get("RABBITMQ_MANAGEMENT_URL")
    if explicit:
        return explicit
    parts = urlsplit(rabbitmq_admin_url())
    return f"http://{parts.username or 'guest'}:{parts.password or 'guest'}@{parts.hostname}:15672"


async def _management(method: str, path: str, body: dict | None = None) -> None:
    parts = urlsplit(management_url())
    auth = aiohttp.encode_basic_auth(parts.username or "guest", parts.password or "guest")
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    async with aiohttp.ClientSession(headers={"Authorization": auth}) as http:
        async with http.request(method, base + path, json=body or {}) as response:
            if response.status >= 400 and response.status != 404:
                raise RuntimeError(f"RabbitMQ management {method} {path}: {response.status}")


async def _rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec("rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL)
    await process.wait()


async def create_vhost() -> str:
    """A fresh vhost: through the management API, or rabbitmqctl where the plugin is off."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    user = urlsplit(rabbitmq_admin_url()).username or "guest"
    try:
        await _management("PUT", f"/api/vhosts/{name}")
        await _management(
            "PUT", f"/api/permissions/{name}/{quote(user)}", {"configure": ".*", "write": ".*", "read": ".*"}
        )
    except aiohttp.ClientConnectionError:
        if not shutil.which("rabbitmqctl"):
            raise
        await _rabbitmqctl("add_vhost", name)
        await _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return with_path(rabbitmq_admin_url(), name)


async def delete_vhost(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    try:
        await _management("DELETE", f"/api/vhosts/{name}")
    except aiohttp.ClientConnectionError:
        await _rabbitmqctl("delete_vhost", name)
