"""pytest fixtures every package's tests share (registered through the pytest11 entry point)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lf_testing import infra


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
