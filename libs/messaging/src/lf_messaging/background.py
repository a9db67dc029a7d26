"""A service's long-running work, started and stopped together: log followers (async projections,
the outbox relay, processors), a message consumer and periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from lf_eventstore import Wakeup
from lf_messaging.consumer import Consumer
from lf_projections import Follower, FollowerRunner

log = structlog.get_logger(__name__)


async def every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` forever, ``seconds`` apart; a failure is logged and retried next time."""
    while True:
        try:
            await job()
        except Exception:
            log.warning("periodic_job.failed", job=getattr(job, "__name__", str(job)), exc_info=True)
        await asyncio.sleep(seconds)


class BackgroundWork:
    def __init__(self, pool: asyncpg.Pool, *, dsn: str, schema: str, role: str | None) -> None:
        self.pool, self._dsn, self._schema, self._role = pool, dsn, schema, role
        self.wakeup = Wakeup(dsn, schema, role=role)  # one LISTEN connection for every follower
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
        self._consumers.append(consumer)
        self._tasks.append(asyncio.create_task(consumer.run(), name="consumer"))

    def every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        self._tasks.append(asyncio.create_task(every(seconds, job), name=getattr(job, "__name__", "job")))

    async def stop(self) -> None:
        """Let consumers finish their in-flight messages, then cancel the rest and close."""
        for consumer in self._consumers:
            await consumer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for close in self._closers:
            await close()
        await self.wakeup.close()
