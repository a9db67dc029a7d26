"""Nothing swallows a cancellation: shutdown cancels background work and must see it end.

The CI hang (issue 6 §7): under Python 3.11, ``asyncio.wait_for`` returns the inner result instead
of raising ``CancelledError`` when the cancellation and the inner completion land in the same loop
iteration. ``Wakeup.wait`` used it with the follower's 1-second poll; a NOTIFY arriving as the
service stopped ate the cancellation, and the follower kept polling every second for ever while
``BackgroundWork.stop`` awaited it.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from lf_eventstore import Wakeup
from lf_messaging import Broker
from lf_messaging.background import BackgroundWork
from lf_testing.silent import SilentServer


async def test_a_wakeup_that_lands_with_the_cancellation_does_not_swallow_it(database_url: str) -> None:
    wakeup = Wakeup(database_url, "svc")
    signal = wakeup.subscribe()

    async def follow_for_ever() -> None:  # FollowerRunner's idle loop
        while True:
            await wakeup.wait(signal, 1.0)

    following = asyncio.create_task(follow_for_ever())
    try:
        while not signal._waiters:  # noqa: ASYNC110 - until it waits on the signal (after connecting)
            await asyncio.sleep(0.01)
        # The signal fires and the follower is cancelled in the same loop iteration: a NOTIFY
        # arriving just as the service stops.
        signal.set()
        await asyncio.sleep(0)
        assert following.cancel()
        # (pytest.raises outside the timeout: the timeout's own cancellation must not count.)
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(3):
                await following
    finally:
        following.cancel()  # where the first one was swallowed: once more, so it ends
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await wakeup.close()


class _Stubborn:
    """A loop that swallows the first cancellations it gets, like third-party code on 3.11 may."""

    def __init__(self, swallow: int) -> None:
        self.swallow = swallow

    async def run(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.swallow == 0:
                    raise
                self.swallow -= 1


async def test_stop_keeps_cancelling_until_the_work_ends(database_url: str) -> None:
    work = BackgroundWork(None, dsn=database_url, schema="svc", role=None)  # type: ignore[arg-type]
    stubborn = _Stubborn(swallow=2)
    work._tasks.append(asyncio.create_task(stubborn.run()))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await work.stop()
    assert all(task.done() for task in work._tasks)


async def test_stop_gives_up_on_work_that_never_ends_within_its_deadline(database_url: str) -> None:
    work = BackgroundWork(None, dsn=database_url, schema="svc", role=None)  # type: ignore[arg-type]
    stubborn = _Stubborn(swallow=10**9)
    task = asyncio.create_task(stubborn.run())
    work._tasks.append(task)
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(10):
            await work.stop(deadline=1.0)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        stubborn.swallow = 0  # leave nothing behind
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_closing_the_broker_can_itself_be_cancelled() -> None:
    """Broker.close() used ``suppress(CancelledError)`` around its connecting task, which also ate
    a cancellation of close() itself."""
    async with SilentServer() as silent:
        broker = Broker(f"amqp://guest:guest@127.0.0.1:{silent.port}/")
        await broker.start()
        await asyncio.sleep(0.1)  # connecting, to a broker that never answers
        closing = asyncio.create_task(broker.close())
        await asyncio.sleep(0)  # close() now waits for its connecting task to end
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await closing
        # ... and the connection was closed all the same: aio-pika's reconnection loop is gone.
        await asyncio.sleep(0.2)
        assert not [task for task in asyncio.all_tasks() if "connection_factory" in repr(task)]
