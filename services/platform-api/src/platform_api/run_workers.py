"""Run workers: competing consumers of ``platform-api.work`` (``RunNodeQueuedV1``), any number
per replica and any number of replicas.

Each ``NodeQueued`` of a run's stream reaches the queue through the outbox relay (the run's own
log is the outbox: no transaction waits on the broker). Per message, outside any transaction:

1. ``start_node``: one command on the run appends ``NodeStarted`` and hands out the node's work,
   or nothing (the attempt is no longer current, the run is over);
2. execution-proxy executes it streamed (reference id ``<runId>:<nodeId>:<attempt>``), the text
   recorded as ``NodeStreamDelta`` at most once per ``delta_interval`` (``NodeAttempt``);
3. ``node_succeeded`` / ``node_failed``: one command appends the settlement and queues the ready
   successors (more ``NodeQueued``, relayed in turn), or ends the run; or, when the run stops
   (cancel, budget, deadline), the execution is cancelled in execution-proxy and ``node_stopped``
   records what it was charged;
4. the message is acked.

A worker that dies anywhere before 4 leaves the message unacked: the broker redelivers it, step 1
hands the same attempt's work out again (its node is still running), and the proxy answers step 2
from its record of that reference id, so the node is charged once. A failure of our own (the
database away, execution-proxy unreachable) does not return the message: the worker keeps it
and tries the same attempt again after a growing delay (up to 30 s), so no outage dead-letters,
drops or fails a node. Messages are handled concurrently up to ``prefetch``: independent nodes
run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from pydantic import ValidationError

from lf_contracts.events import RunNodeQueuedV1
from lf_eventstore import RecordedEvent
from lf_messaging import Broker, BrokerUnavailable, Relay, declare_work_queue
from platform_api.adapters.execution_proxy import (
    ExecutionProxy,
    NodeExecutionFailed,
    charge_of,
)
from platform_api.application.run_events import RunEventsHub
from platform_api.application.runs import RunUseCases
from platform_api.domain.errors import RunNotFound
from platform_api.domain.run import Charge, NodeWork, StopReason
from platform_api.domain.run_events import stream_id

log = structlog.get_logger(__name__)

SERVICE = "platform-api"
ROUTING_KEYS = [RunNodeQueuedV1.routing_key]
MAX_RETRY_DELAY = 30.0
STOP_CHECK_SECONDS = 1.0
"""A running node's worker checks its run this often, should it miss the run's events."""
DEADLINE_MARGIN_SECONDS = 0.05
"""The wait is cut this long after the deadline, so the run sees it passed (``NodeTimedOut``)."""
CANCEL_ASKS = 3
"""How often a stopped execution's cancel is asked while execution-proxy answers ``cancelling``."""
CUT_SHORT = "execution_cut_short"
"""A node attempt's code when its execution was cut short in execution-proxy (retried as new)."""
STOPPING = {"RunCancelRequested", "RunCancelled", "RunCompleted", "RunFailed", "RunTimedOut"}


class RunWorkers:
    def __init__(
        self,
        broker: Broker,
        runs: RunUseCases,
        proxy: ExecutionProxy,
        *,
        prefetch: int = 16,
        node_timeout: float = 300.0,
        retry_delay: float = 1.0,
        delta_interval: float = 0.25,
        hub: RunEventsHub | None = None,
    ) -> None:
        self.broker, self.runs, self.proxy = broker, runs, proxy
        self.prefetch, self.node_timeout, self.retry_delay = prefetch, node_timeout, retry_delay
        self.delta_interval, self.hub = delta_interval, hub
        self._stopping = asyncio.Event()
        self._channel: AbstractRobustChannel | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.consuming = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                channel = await self.broker.channel()
            except BrokerUnavailable:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.broker.reconnect_interval)
                continue
            self._channel = channel
            try:
                await channel.set_qos(prefetch_count=self.prefetch)
                queue = await declare_work_queue(channel, SERVICE, ROUTING_KEYS)
                await queue.consume(self._on_message)
            except (TimeoutError, *CONNECTION_EXCEPTIONS):  # lost while starting: start over
                log.warning("run_workers.start_failed", exc_info=True)
                with contextlib.suppress(Exception):
                    await channel.close()
                continue
            # From here aio-pika's robust channel re-declares and resumes consuming by itself
            # whenever the connection comes back.
            self.consuming.set()
            log.info("run_workers.started", prefetch=self.prefetch)
            await self._stopping.wait()

    @property
    def busy(self) -> int:
        """Messages being handled now."""
        return len(self._in_flight)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout)
        for task in self._in_flight:
            task.cancel()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        await self.proxy.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping.is_set():
            return  # left unacked: redelivered once the channel closes
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            try:
                job = RunNodeQueuedV1.model_validate_json(message.body)
            except ValidationError:
                log.error("run_workers.poison", message_id=message.message_id)
                await message.reject(requeue=False)
                return
            delay = self.retry_delay
            while True:
                try:
                    await self.process(job, message.message_id or "")
                    break
                except Exception:
                    # Ours (the database away, execution-proxy unreachable, a bug), never the
                    # job's: keep the message and try the same attempt again here rather than
                    # returning it, which RabbitMQ would count towards the queue's delivery
                    # limit. Processing again is harmless (see the module's doc).
                    if self._stopping.is_set():
                        return  # left unacked: redelivered once the channel closes
                    log.warning(
                        "run_workers.retry", run_id=str(job.run_id), node_id=job.node_id, exc_info=True
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY)
            await message.ack()
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def process(self, job: RunNodeQueuedV1, message_id: str) -> None:
        metadata = {
            "correlationId": str(job.run_id),
            "causationId": message_id or str(job.run_id),
            "actor": "run-worker",
        }
        try:
            work = await self.runs.start_node(job.run_id, job.node_id, job.attempt, metadata=metadata)
        except RunNotFound:  # no such run: nothing will ever make this job runnable
            log.error("run_workers.unknown_run", run_id=str(job.run_id))
            return
        if work is None:
            return
        await NodeAttempt(self, work, metadata).run()


class NodeAttempt:
    """One node attempt's execution, streamed, and its settlement.

    Text received is recorded as ``NodeStreamDelta`` at most once per ``delta_interval`` (the text
    since the previous delta; the rest goes with ``NodeCompleted``). The attempt stops (its
    execution cancelled in execution-proxy, its charge reported with ``node_stopped``) when its run
    stops: seen in the run's events (the process's ``RunEventsHub``), in a delta refused by the
    run, or by a check every ``STOP_CHECK_SECONDS``; or when its wait is cut at the run's deadline
    or at ``node_timeout``."""

    def __init__(self, workers: RunWorkers, work: NodeWork, metadata: dict[str, Any]) -> None:
        self.workers, self.work, self.metadata = workers, work, metadata
        self.runs, self.proxy = workers.runs, workers.proxy
        self.received: list[str] = []
        self.size = 0
        self.appended = work.streamed  # what an earlier delivery recorded already
        self.stop = asyncio.Event()
        self.finished = asyncio.Event()

    async def run(self) -> None:
        work = self.work
        unwatch = self.workers.hub.watch(stream_id(work.run_id), self._seen) if self.workers.hub else None
        wait = self.workers.node_timeout
        why: StopReason = "node_timeout"
        if work.deadline_at is not None:
            left = (work.deadline_at - datetime.now(UTC)).total_seconds() + DEADLINE_MARGIN_SECONDS
            if left <= wait:
                wait, why = max(0.0, left), "deadline"
        execution = asyncio.create_task(
            # Its own timeout is a safety net: the wait below is what cuts a slow execution.
            self.proxy.execute_stream(work, timeout=wait + 30.0, on_text=self._received)
        )
        helpers = [asyncio.create_task(self._flush_deltas()), asyncio.create_task(self._check_run())]
        stopped = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({execution, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if unwatch is not None:
                unwatch()
            self.finished.set()
            stopped.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if not execution.done():
                execution.cancel()  # the proxy's execution is detached: cancelled below
                await asyncio.gather(execution, return_exceptions=True)
        if execution.cancelled() or not execution.done():
            # Why it stopped, as this worker saw it: the domain trusts a cut at the deadline rather
            # than judging it again on the database's clock (``Run.node_stopped``).
            reason: StopReason = "run_stopping" if self.stop.is_set() else why
            await self.runs.node_stopped(work, await self._cancel_execution(), reason, metadata=self.metadata)
            return
        try:
            answer = execution.result()
        except NodeExecutionFailed as failure:
            if failure.same_reference:
                # Our connection failed, not the provider (the execution may run on in the proxy),
                # or it runs on another replica of the proxy: ask again with the same attempt
                # (it attaches or replays), never a new one.
                raise
            await self.runs.node_failed(
                work,
                failure.code,
                failure.message,
                transient=failure.transient,
                credits=failure.charged.credits if failure.charged is not None else 0,
                metadata=self.metadata,
            )
            return
        if answer.cancelled:  # cancelled by another hand (this run's stop seen elsewhere first)
            charge = Charge(answer.credits, answer.input_tokens, answer.output_tokens)
            await self.runs.node_stopped(work, charge, "run_stopping", metadata=self.metadata)
            return
        if answer.cut_short:
            # The provider did not finish (execution-proxy stopped mid-way, and this is most often
            # the replay of its record after our stream broke): charged, but not the node's
            # result. A new attempt, with this one's charge.
            await self.runs.node_failed(
                work,
                CUT_SHORT,
                "execution-proxy stopped the execution before the provider finished",
                transient=True,
                credits=answer.credits,
                metadata=self.metadata,
            )
            return
        await self.runs.node_succeeded(work, answer, metadata=self.metadata)

    def _received(self, text: str) -> None:
        self.received.append(text)
        self.size += len(text)

    def _seen(self, event: RecordedEvent) -> None:
        if event.type in STOPPING or (
            event.type in ("NodeCancelled", "NodeTimedOut", "NodeRetried")
            and event.data.get("node_id") == self.work.node_id
        ):
            self.stop.set()

    async def _flush_deltas(self) -> None:
        """Every ``delta_interval``, the text received since the last delta, as one delta; a
        delta the run refuses stops the attempt."""
        while not self.finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), self.workers.delta_interval)
            if self.finished.is_set() or self.size <= self.appended:
                continue
            text = "".join(self.received)
            self.received = [text]
            delta = text[self.appended :]
            try:
                accepted = await self.runs.stream_delta(self.work, delta, metadata=self.metadata)
            except Exception:  # the database away: the text goes with the next delta or the end
                log.warning("run_workers.delta_failed", run_id=str(self.work.run_id), exc_info=True)
                continue
            if not accepted:
                self.stop.set()
                return
            self.appended += len(delta)

    async def _check_run(self) -> None:
        run_id: UUID = self.work.run_id
        while not self.finished.is_set():
            try:
                if await self.runs.stopping(run_id):
                    self.stop.set()
                    return
            except Exception:
                log.warning("run_workers.check_failed", run_id=str(run_id), exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), STOP_CHECK_SECONDS)

    async def _cancel_execution(self) -> Charge | None:
        """Cancels the attempt's execution in execution-proxy; what it was charged (``None``: not
        known, the proxy still stopping it after ``CANCEL_ASKS`` asks, or refusing the cancel)."""
        for _ in range(CANCEL_ASKS):
            try:
                charge = charge_of(await self.proxy.cancel(self.work))
            except NodeExecutionFailed as refused:
                log.error("run_workers.cancel_refused", run_id=str(self.work.run_id), code=refused.code)
                return None
            if charge is not None:
                return charge
        return None


def node_message(event: RecordedEvent) -> RunNodeQueuedV1 | None:
    """The outbox relay's mapping: each ``NodeQueued`` of a run is one job on the work queue."""
    if event.type != "NodeQueued":
        return None
    return RunNodeQueuedV1(
        occurred_at=event.recorded_at,
        run_id=event.data["run_id"],
        node_id=event.data["node_id"],
        attempt=event.data["attempt"],
    )


class RunNodeRelay(Relay):
    """The relay of ``NodeQueued``; it declares the work queue before it publishes, so a job
    published before any worker has started is queued, not dropped as unroutable."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker, to_message=node_message, types=["NodeQueued"])

    async def _open_channel(self) -> AbstractRobustChannel:
        fresh = self._channel is None or self._channel.is_closed
        channel = await super()._open_channel()
        if fresh:
            await declare_work_queue(channel, SERVICE, ROUTING_KEYS)
        return channel
