"""Our own services in-process, for a test of one service against the real other beside it (not a
fake): each built by its app factory with its background work (relay, consumer, followers), in its
own schema as its own runtime role, migrated as its owner, on the test's database and vhost.

    async with services.execution_proxy(database_url, amqp_url, platform_api_key=KEY) as proxy:
        settings.execution_proxy_url = services.url_of(proxy)

The services are imported inside the functions: lf_testing is a lib and depends on no service in
code; only the test that starts one needs it installed (the workspace has them all).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import aiohttp
from aiohttp.test_utils import TestServer

from lf_pg import DatabaseAccess
from lf_testing.waiting import queue_declared

NOWHERE = "http://127.0.0.1:9"
"""A URL nothing answers on (the discard port): for a service's neighbour a test never reaches."""


def url_of(server: TestServer) -> str:
    """The server's base URL, as a service's ``*_URL`` setting takes it (no trailing slash)."""
    return str(server.make_url("")).rstrip("/")


def _settings(
    settings_class: type[Any], package: str, database_url: str, amqp_url: str, **values: Any
) -> Any:
    """A service's settings as compose runs it: its runtime role serves, its owner role migrates."""
    return settings_class(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role=package,
        db_owner_role=f"{package}_owner",
        **values,
    )


@asynccontextmanager
async def wallet_api(
    database_url: str, amqp_url: str, *, platform_api_key: str, **changes: Any
) -> AsyncIterator[TestServer]:
    """wallet-api with its consumer, ledger and expiry loop, once its queue is bound: an
    execution settled from now on is captured. ``changes``: its settings that differ."""
    from wallet_api import app
    from wallet_api.settings import WalletSettings

    settings = _settings(
        WalletSettings, "wallet_api", database_url, amqp_url, platform_api_key=platform_api_key, **changes
    )
    await DatabaseAccess.of(settings, app.SCHEMA).migrate(app.MIGRATIONS)
    async with TestServer(app.create_app(settings)) as server:
        await queue_declared(amqp_url, "wallet-api.events")
        yield server


async def grant(wallet: TestServer, lenser_id: UUID, credits: int, *, platform_api_key: str) -> None:
    """Credits on the lenser's wallet, as the platform grants them (its internal route)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            wallet.make_url(f"/internal/wallets/{lenser_id}/grants"),
            json={"amount": credits, "reason": "test", "idempotencyKey": str(uuid4())},
            headers={"X-Platform-Api-Key": platform_api_key},
        ) as response,
    ):
        assert response.status == 201, await response.text()


@asynccontextmanager
async def execution_proxy(
    database_url: str,
    amqp_url: str,
    *,
    platform_api_key: str,
    wallet_api_url: str = NOWHERE,
    **changes: Any,
) -> AsyncIterator[TestServer]:
    """execution-proxy with its relay and the development catalogue (its built-in ``local``
    provider needs no key), seeded as ``serve`` seeds it. ``wallet_api_url``: the wallet that
    charged executions reserve on; the default is for tests that charge nothing."""
    from execution_proxy import __main__ as main
    from execution_proxy import app
    from execution_proxy.settings import ExecutionSettings

    settings = _settings(
        ExecutionSettings,
        "execution_proxy",
        database_url,
        amqp_url,
        platform_api_key=platform_api_key,
        wallet_api_url=wallet_api_url,
        seed_catalogue=True,
        **changes,
    )
    await DatabaseAccess.of(settings, app.SCHEMA).migrate(app.MIGRATIONS)
    await main._seed(settings)  # what `serve` does first
    async with TestServer(app.create_app(settings)) as server:
        yield server
