"""A service's long-running work, started and stopped together: log followers (async projections,
the outbox relay, processors), a message consumer and periodic jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from lf_eventstore import Wakeup
from lf_messaging.consumer import Consumer
from lf_messaging.pruning import PRUNE_INTERVAL_SECONDS, prune_inbox
from lf_projections import Follower, FollowerRunner

log = structlog.get_logger(__name__)


async def every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` forever, ``seconds`` apart; a failure is logged and retried next time."""
    while True:
        try:
            await job()
        except Exception:  # not CancelledError: a cancelled job ends the loop
            log.warning("periodic_job.failed", job=getattr(job, "__name__", str(job)), exc_info=True)
        await asyncio.sleep(seconds)


class BackgroundWork:
    def __init__(
        self, pool: asyncpg.Pool, *, dsn: str, schema: str, role: str | None, wakeup: Wakeup | None = None
    ) -> None:
        """``wakeup``: the process's (``lf_web`` keeps it as ``app[WAKEUP]``, its use cases call its
        ``appended``), closed by its owner; without it, one of its own, closed by ``stop``."""
        self.pool, self._dsn, self._schema, self._role = pool, dsn, schema, role
        # One LISTEN connection for every follower, and the same that this process's appends wake.
        self._own_wakeup = wakeup is None
        self.wakeup = wakeup if wakeup is not None else Wakeup(dsn, schema, role=role)
        self._consumers: list[Consumer] = []
        self._closers: list[Callable[[], Awaitable[object]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def follow(self, follower: Follower, *, batch_size: int = 500) -> None:
        runner = FollowerRunner(
            follower,
            self.pool,
            self.wakeup,
            dsn=self._dsn,
            schema=self._schema,
            role=self._role,
            batch_size=batch_size,
        )
        self._tasks.append(asyncio.create_task(runner.run(), name=follower.name))
        if close := getattr(follower, "close", None):
            self._closers.append(close)

    def consume(self, consumer: Consumer) -> None:
        if consumer.appended is None:  # its handlers' appends wake this process's readers
            consumer.appended = self.wakeup.appended
        self._consumers.append(consumer)
        self._tasks.append(asyncio.create_task(consumer.run(), name="consumer"))
        if len(self._consumers) == 1:  # one inbox per service: its consumer's bookkeeping
            self.every(PRUNE_INTERVAL_SECONDS, self.prune_inbox)

    async def prune_inbox(self) -> None:
        await prune_inbox(self.pool)

    def every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        self._tasks.append(asyncio.create_task(every(seconds, job), name=getattr(job, "__name__", "job")))

    async def stop(self, deadline: float = 10.0) -> None:
        """Let consumers finish their in-flight messages (half the deadline), cancel the rest, close.

        Returns within ``deadline`` seconds whatever the work does: the process is exiting, and a
        broker or database that does not answer must not keep it alive. Whatever is still running
        then is logged and left to the process exit (unacked messages go back to the queue,
        uncommitted batches roll back).
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        for consumer in self._consumers:
            await _within(consumer.stop(timeout=deadline / 2), end - loop.time(), "consumer.stop")
        await _cancel_all(self._tasks, end - loop.time())
        for close in self._closers:
            await _within(close(), end - loop.time(), "close")
        if self._own_wakeup:
            await _within(self.wakeup.close(), end - loop.time(), "wakeup.close")


async def _within(work: Awaitable[object], seconds: float, what: str) -> None:
    """Await ``work`` for at most ``seconds``; then cancel it and move on.

    The work runs as a task of its own and this coroutine only *waits* for it: cancelling it can
    never cancel (or be swallowed by) the caller.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([task], timeout=max(0.0, seconds))
    if not done:
        task.cancel()
        log.warning("background.stop_overdue", step=what)
    elif not task.cancelled() and (error := task.exception()) is not None:
        log.warning("background.stop_failed", step=what, exc_info=error)


async def _cancel_all(tasks: list[asyncio.Task[None]], seconds: float) -> None:
    """Cancel until each task has ended, or ``seconds`` have passed.

    Cancelled again every 100 ms: a library may swallow one cancellation (``asyncio.wait_for``
    under Python 3.11 does when its inner future completes at the same moment).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + max(0.0, seconds)
    while pending := [task for task in tasks if not task.done()]:
        remaining = end - loop.time()
        if remaining <= 0:
            for task in pending:
                log.error("background.task_ignores_cancellation", task=task.get_name(), stack=repr(task))
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=min(0.1, remaining))
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background.task_failed", task=task.get_name(), exc_info=error)
