"""Writes that may follow the answer instead of preceding it.

An execution that moves no money (the caller's own key, no reference to answer a retry from) is
recorded after its answer is sent: the record is history and metrics, and its transaction (a few
round trips and a WAL flush) would otherwise be most of what the platform adds to the provider's
latency. Each write is retried with backoff while the database is away, and shutdown waits for
the ones still running. What a crash in between loses is that record alone: no credit moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 0.2


class Afterwards:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[None]] = set()

    def add(self, write: Callable[[], Awaitable[object]], *, what: str) -> None:
        """Run ``write`` (a factory: each attempt is a fresh call) once the caller has moved on."""
        task = asyncio.create_task(self._run(write, what))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, write: Callable[[], Awaitable[object]], what: str) -> None:
        for attempt in range(ATTEMPTS):
            try:
                await write()
                return
            except Exception as error:  # noqa: BLE001 - retried, then logged: nothing else may be lost
                log.warning("afterwards.retrying", what=what, attempt=attempt, error=type(error).__name__)
                await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2**attempt)
        log.error("afterwards.lost", what=what)

    async def drain(self) -> None:
        """Wait for every write still running (shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
