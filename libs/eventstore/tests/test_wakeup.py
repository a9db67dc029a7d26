"""The LISTEN connection that wakes log readers comes back by itself after an outage (issue 6 §1)."""

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from lf_eventstore import Wakeup
from lf_testing.proxy import TcpProxy

SCHEMA = "svc"


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def notify(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"NOTIFY {SCHEMA}_events")
    finally:
        await conn.close()


async def test_a_listen_that_failed_is_retried_and_wakes_a_reader_already_waiting(database_url):
    parts = urlsplit(database_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    await proxy.cut()  # the database is unreachable when the reader starts waiting
    wakeup = Wakeup(through(proxy, database_url), SCHEMA, max_backoff=0.2)
    signal = wakeup.subscribe()
    try:
        # A long poll: before this change, LISTEN was only retried at the next wait, 30 s away.
        waiting = asyncio.create_task(wakeup.wait(signal, 30))
        await asyncio.sleep(0.5)
        assert not wakeup.listening.is_set()
        await proxy.start()
        await asyncio.wait_for(wakeup.listening.wait(), 5)
        await asyncio.wait_for(waiting, 5)  # the reconnection itself wakes readers (missed appends)

        waiting = asyncio.create_task(wakeup.wait(signal, 30))
        await notify(database_url)
        await asyncio.wait_for(waiting, 5)
    finally:
        await wakeup.close()
        await proxy.cut()


async def test_a_lost_listen_connection_is_reestablished_while_a_reader_waits(database_url):
    parts = urlsplit(database_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    wakeup = Wakeup(through(proxy, database_url), SCHEMA, max_backoff=0.2)
    signal = wakeup.subscribe()
    try:
        await wakeup.wait(signal, 0.01)
        await asyncio.wait_for(wakeup.listening.wait(), 5)
        await wakeup.wait(signal, 0.01)  # the poke of the first connection
        waiting = asyncio.create_task(wakeup.wait(signal, 30))
        await asyncio.sleep(0.1)
        await proxy.cut()  # lost under the waiting reader
        await proxy.start()
        await notify(database_url)  # missed: nobody listens at this moment
        # Before this change the reader slept its whole poll: nothing reconnected until its next wait.
        await asyncio.wait_for(waiting, 5)
        await asyncio.wait_for(wakeup.listening.wait(), 5)
        waiting = asyncio.create_task(wakeup.wait(signal, 30))
        await notify(database_url)
        await asyncio.wait_for(waiting, 5)
    finally:
        await wakeup.close()
        await proxy.cut()
