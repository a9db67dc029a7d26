"""pytest fixtures every package's tests share (registered through the pytest11 entry point)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import structlog

from lf_testing import hangs, infra

# Tests run as development (public dev secrets, test-mode payments); unset, services default to
# production. A test of production passes env_mode="production" (or ENV_MODE) itself.
os.environ.setdefault("ENV_MODE", "development")

# structlog's default console renderer draws exceptions with rich, locals included: during an outage
# test every reconnecting loop logs one, and drawing them held the event loop for seconds (long
# enough for RabbitMQ to drop a connection whose handshake waited on it). Plain tracebacks here.
structlog.configure(
    processors=[
        *structlog.get_config()["processors"][:-1],
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]
)


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of its own for this test, dropped afterwards."""
    url = await infra.create_database()
    try:
        yield url
    finally:
        await infra.drop_database(url)


@pytest.fixture
async def amqp_url() -> AsyncIterator[str]:
    """A RabbitMQ vhost of its own for this test, deleted afterwards."""
    url = await infra.create_vhost()
    try:
        yield url
    finally:
        await infra.delete_vhost(url)


_DUMP_TIMER = pytest.StashKey[object]()


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: object):
    """On a test's timeout, print every asyncio task's stack too (see lf_testing.hangs)."""
    result = yield
    item.stash[_DUMP_TIMER] = hangs.arm(settings.timeout, settings.method)  # type: ignore[attr-defined]
    return result


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item):
    timer = item.stash.get(_DUMP_TIMER, None)
    if timer is not None:
        timer.cancel()  # type: ignore[attr-defined]
    return (yield)
