"""Internal streamed executions detached from their connection, and the cancels that stop them.

An internal caller (platform-api's run worker) streams an execution with a ``referenceId``
(``POST /internal/executions``, ``stream: true``). The execution is not its connection's: a task of
this process reads the provider's stream to its end and records it (``ChatStream``'s settlement),
whoever listens. A worker that dies mid-node therefore does not cut its node short, and its retry
(same reference) attaches here to the running execution (every token from the first, then the
end), or is answered from the record once it ended; never a second provider call in this process.
On another replica, a retry of a running reference does not run it again: the start claims the
execution for its process (``owner``, a uuid per process, in ``execution_controls``), whose
watcher refreshes ``heartbeat_at`` every ``heartbeat_seconds`` while it runs; a start that finds a
live owner elsewhere is refused ``RunningElsewhere`` (409 ``execute.running_elsewhere``: ask again,
then it is replayed), and one whose owner's heartbeat is older than ``STALE_HEARTBEATS`` of them
(the owner died) takes it over.

Cancels (``cancel``) meet starts in ``execution_controls``, one row per execution id, whichever
comes first, on any replica (migrations/0003): a start claims the row before anything is
reserved and is refused if a cancel is there; a cancel marks it and learns whether something had
started. Each process watches the rows of the executions it runs (``_watch``), woken by the
cancelling replica's NOTIFY (through the process's ``Wakeup``) or every ``check_seconds``, and
only while it runs some: a cancelled execution is stopped like a stream whose client left (its
input and the output produced so far charged, never more than reserved) and recorded cancelled.

Shutdown drains them (``drain``): they run to their end and are recorded before the pool closes
(those still running after a while are cut short, charged for what they produced).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from execution_proxy.application.executions import (
    ChatOrder,
    ChatOutcome,
    ChatStream,
    Executions,
    referenced_execution_id,
)
from execution_proxy.domain import errors
from execution_proxy.domain.cancels import CancelState, cancel_state
from lf_eventstore import Wakeup
from lf_pg import WITHOUT_FLUSH

log = structlog.get_logger(__name__)

RECORD_POLL_SECONDS = 0.05
"""How often a cancel looks for the record of an execution another replica stops."""
STALE_HEARTBEATS = 3
"""An owner silent for this many heartbeats is taken for dead: another start takes its execution over."""


class Detached:
    """One detached execution: its stream read by a task of its own, any number of followers."""

    def __init__(self, stream: ChatStream) -> None:
        self.stream = stream
        self.execution_id = stream.prepared.execution_id
        self._changed = asyncio.Event()
        self._reading = False
        self._cancelling = False
        self.task: asyncio.Task[ChatOutcome | None] = asyncio.create_task(
            self._run(), name=f"detached-{self.execution_id}"
        )
        self.task.add_done_callback(lambda _: self._changed.set())

    async def _run(self) -> ChatOutcome | None:
        async with self.stream:  # finish (shielded) records the outcome however the loop ends
            try:
                self._reading = True
                async for _ in self.stream:
                    self._wake()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None
                if not self._cancelling or task.uncancel() > 0:
                    raise  # not (only) our own: a shutdown that could not wait
            finally:
                self._reading = False
        return self.stream.outcome

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def cancel(self) -> None:
        """Stop it (its caller cancelled it): a no-op once it ended or is being recorded."""
        if self.task.done() or not self.stream.cancel():
            return
        if self._reading:
            # It waits on the provider: interrupted there, which closes the provider's stream.
            self._cancelling = True
            self.task.cancel()
        # Not reading yet: its first read sees ``cancelled`` and never asks the provider.

    async def texts(self) -> AsyncIterator[str]:
        """Every text it produced, from the first, as it comes; ends when the execution does."""
        sent = 0
        while True:
            changed, pieces = self._changed, self.stream.pieces
            while sent < len(pieces):
                yield pieces[sent]
                sent += 1
            if self.task.done():
                return
            await changed.wait()

    async def outcome(self) -> ChatOutcome | None:
        """Its recorded outcome; None when nothing was charged (a failure, or a cancel before the
        provider was asked: ``stream.failure`` and ``stream.cancelled`` say which)."""
        try:
            return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if self.task.done() and self.task.cancelled():
                return self.stream.outcome  # a shutdown interrupted it; it was recorded anyway
            raise


@dataclass(frozen=True, slots=True)
class Cancellation:
    execution_id: UUID
    state: CancelState
    execution: ChatOutcome | None
    """The record, once there is one (``cancelled`` or ``ended``)."""


class DetachedExecutions:
    def __init__(
        self,
        executions: Executions,
        wakeup: Wakeup,
        *,
        check_seconds: float,
        wait_seconds: float,
        heartbeat_seconds: float = 2.0,
    ) -> None:
        self.executions = executions
        self.owner = uuid4()
        """This process, as the owner of the executions it runs (``execution_controls.owner``)."""
        self.heartbeat_seconds = heartbeat_seconds
        self._beaten = 0.0
        self.pool: asyncpg.Pool = executions.pool
        self.wakeup = wakeup
        self.check_seconds = check_seconds
        self.wait_seconds = wait_seconds
        self._running: dict[UUID, Detached] = {}
        self._signal = wakeup.subscribe()
        self._watcher: asyncio.Task[None] | None = None

    # --- starting and attaching ----------------------------------------------------------------

    def running(self, order: ChatOrder) -> Detached | None:
        """The execution of ``order``'s reference running in this process, if one is."""
        return self._running.get(self.executions.execution_id(order))

    async def start(
        self, order: ChatOrder, *, request_id: str, metadata: dict[str, Any]
    ) -> Detached | ChatOutcome:
        """``order`` (with a reference) running detached: the one running here already, or a new
        one; or, once it ended, its recorded outcome. A cancelled reference: ``ExecutionCancelled``."""
        assert order.reference_id is not None, "only an order with a reference is detached"
        if (running := self.running(order)) is not None:
            return running
        claimed: list[datetime | None] = []

        async def claim(execution_id: UUID, reference_id: str) -> None:
            claimed.append(await self._claim(execution_id, reference_id))

        try:
            prepared = await self.executions.prepare(
                order, request_id=request_id, metadata=metadata, claim=claim
            )
        except BaseException:
            if claimed:  # refused after its claim (the wallet said no): nothing runs under it
                with contextlib.suppress(Exception):  # then a cancel waits in vain: the lesser harm
                    await asyncio.shield(self._unclaim(self.executions.execution_id(order), claimed[0]))
            raise
        if isinstance(prepared, ChatOutcome):
            return prepared
        if (running := self._running.get(prepared.execution_id)) is not None:
            return running  # a twin started while this one prepared, on the same reservation
        detached = Detached(self.executions.stream(prepared))
        self._running[detached.execution_id] = detached
        detached.task.add_done_callback(lambda _: self._running.pop(detached.execution_id, None))
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="detached-cancel-watch")
        return detached

    async def _claim(self, execution_id: UUID, reference_id: str) -> datetime | None:
        """Started and owned by this process, unless a cancel came first (``ExecutionCancelled``)
        or another process owns it and its heartbeat is fresh (``RunningElsewhere``: its provider
        is not asked twice). Returns the start this call set (None when an earlier attempt's start
        was there already)."""
        row = await self.pool.fetchrow(
            "INSERT INTO execution_controls (execution_id, reference_id, started_at, owner, heartbeat_at)"
            " VALUES ($1, $2, now(), $3, now()) ON CONFLICT (execution_id) DO UPDATE"
            " SET started_at = coalesce(execution_controls.started_at, excluded.started_at),"
            " owner = excluded.owner, heartbeat_at = excluded.heartbeat_at"
            " WHERE execution_controls.cancel_requested_at IS NULL"
            " AND (execution_controls.owner IS NULL OR execution_controls.owner = excluded.owner"
            " OR execution_controls.heartbeat_at < now() - $4::interval)"
            " RETURNING started_at, started_at = now() AS ours",
            execution_id,
            reference_id,
            self.owner,
            timedelta(seconds=self.heartbeat_seconds * STALE_HEARTBEATS),
        )
        if row is not None:
            return row["started_at"] if row["ours"] else None
        if await self.pool.fetchval(
            "SELECT cancel_requested_at IS NOT NULL FROM execution_controls WHERE execution_id = $1",
            execution_id,
        ):
            raise errors.ExecutionCancelled()
        raise errors.RunningElsewhere()

    async def _unclaim(self, execution_id: UUID, started_at: datetime | None) -> None:
        """Give up an execution that never ran, if this process still owns it: its start taken
        back when this call set it (a cancel then answers ``pending`` rather than waiting for a
        record that will never come), and its owner cleared (a retry elsewhere need not wait)."""
        await self.pool.execute(
            "UPDATE execution_controls SET owner = NULL, heartbeat_at = NULL,"
            " started_at = CASE WHEN started_at = $3 THEN NULL ELSE started_at END"
            " WHERE execution_id = $1 AND owner = $2",
            execution_id,
            self.owner,
            started_at,
        )

    async def refuse_if_cancelled(self, execution_id: UUID, reference_id: str) -> None:
        """The ``claim`` of a buffered execution: refused if cancelled, never marked started (a
        buffered execution is not stopped by a cancel; see the service README)."""
        if await self.pool.fetchval(
            "SELECT true FROM execution_controls WHERE execution_id = $1 AND cancel_requested_at IS NOT NULL",
            execution_id,
        ):
            raise errors.ExecutionCancelled()

    # --- cancelling ----------------------------------------------------------------------------

    async def cancel(
        self, *, funding: str, payer_id: UUID | None, lenser_id: UUID | None, reference_id: str
    ) -> Cancellation:
        """Cancel the execution of a reference (named as its order names it); idempotent. Waits up
        to ``wait_seconds`` for the record of an execution it stops."""
        execution_id = referenced_execution_id(funding, payer_id, lenser_id, reference_id)
        started = await self.pool.fetchval(
            "INSERT INTO execution_controls (execution_id, reference_id, cancel_requested_at)"
            " VALUES ($1, $2, now()) ON CONFLICT (execution_id) DO UPDATE"
            " SET cancel_requested_at = coalesce(execution_controls.cancel_requested_at, now())"
            " RETURNING started_at IS NOT NULL",
            execution_id,
            reference_id,
        )
        # Not an append, but the same NOTIFY: other replicas' watchers look now, not at their next check.
        self.wakeup.appended()
        record = await self.executions.record_of(execution_id)
        if record is None and started:
            if (local := self._running.get(execution_id)) is not None:
                local.cancel()
            record = await self._record_within(execution_id, local, self.wait_seconds)
        state = cancel_state(
            started=started, ended=record is not None, cancelled=record is not None and record.cancelled
        )
        return Cancellation(execution_id, state, record)

    async def _record_within(
        self, execution_id: UUID, local: Detached | None, seconds: float
    ) -> ChatOutcome | None:
        deadline = time.monotonic() + seconds
        if local is not None:
            await asyncio.wait({local.task}, timeout=seconds)
        while (record := await self.executions.record_of(execution_id)) is None:
            if (left := deadline - time.monotonic()) <= 0:
                return None
            await asyncio.sleep(min(left, RECORD_POLL_SECONDS))
        return record

    async def _watch(self) -> None:
        """While this process runs detached executions: stop those whose cancel was written, and
        say every ``heartbeat_seconds`` that it still runs them (its ownership stays fresh)."""
        while self._running:
            try:
                if time.monotonic() - self._beaten >= self.heartbeat_seconds:
                    await self._heartbeat()
                cancelled = await self.pool.fetch(
                    "SELECT execution_id FROM execution_controls"
                    " WHERE execution_id = ANY($1::uuid[]) AND cancel_requested_at IS NOT NULL",
                    list(self._running),
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("detached.cancel_check_failed", error=repr(error))  # checked again soon
                cancelled = []
            for row in cancelled:
                if (detached := self._running.get(row["execution_id"])) is not None:
                    detached.cancel()
            await self.wakeup.wait(self._signal, self.check_seconds)

    async def _heartbeat(self) -> None:
        # Without waiting for the WAL flush: a heartbeat a server crash loses is the next one's.
        await self.pool.execute(
            f"UPDATE execution_controls SET heartbeat_at = now() FROM (SELECT {WITHOUT_FLUSH}) AS durability"
            " WHERE execution_id = ANY($1::uuid[]) AND owner = $2",
            list(self._running),
            self.owner,
        )
        self._beaten = time.monotonic()

    # --- shutdown ------------------------------------------------------------------------------

    async def drain(self, seconds: float) -> None:
        """Let every detached execution run to its end and be recorded, for up to ``seconds``
        (cancels still stop them meanwhile); then cut short those still running, recorded and
        charged for what they produced (the settlement of a server stopping), rather than left to
        the process's exit deadline with nothing recorded. Then stop watching."""
        tasks = [detached.task for detached in self._running.values()]
        if tasks:
            _, running = await asyncio.wait(tasks, timeout=seconds)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            # gather, not suppress(CancelledError): a cancellation of the caller must go on.
            await asyncio.gather(self._watcher, return_exceptions=True)
