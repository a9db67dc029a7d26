"""Runs' use cases: queue a lens or workflow run, cancel it, and what run workers report.

Each is one command on the run's stream (``CommandRunner.submit``), decided purely by the ``Run``
aggregate. What a run executes (its lens versions, edges, funding) is read from the catalogue's
read models before the command and copied into ``RunQueued``: the run never reads them again.

Idempotency keys: the run id of ``(lenser, key)`` is derived (uuid5), so two requests with one key
meet on one stream, whose lock orders them: the second finds the first's run (same body: the same
run; another body: ``IdempotencyConflict``). A key is honoured 24 hours: past them, the next run
of that key gets the id derived from the expired run's id, a chain every replica follows alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import asyncpg

from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, UseCases
from platform_api.domain.errors import IdempotencyConflict, RunNotFound
from platform_api.domain.run import Charge, Execution, NodeWork, Run, RunQueued, StopReason, deadline_of
from platform_api.metrics import count_run_events
from platform_api.projections import INLINE

# A command on a run reads at most 200 events whatever the run's length (deltas make it long).
RUNS = AggregateRepository(Run, "run", snapshot_every=200)

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class RunRequest:
    """A run as asked for, with what it executes already read from the catalogue."""

    lenser_id: UUID
    kind: str
    target_id: UUID
    version: int
    inputs: dict[str, Any]
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    funding_source: str
    byok_key_ref_id: str | None
    model_override: str | None
    provider_override: str | None
    budget_credits: int | None
    deadline_seconds: int | None
    idempotency_key: str | None
    request_hash: str
    request_id: UUID


def request_hash(kind: str, target_id: UUID, body: dict[str, Any]) -> str:
    """What "the same request" means for an idempotency key: the target and the body without
    the key, as canonical JSON."""
    canonical = json.dumps(
        {
            "kind": kind,
            "target": str(target_id),
            "body": {k: v for k, v in body.items() if k != "idempotencyKey"},
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def keyed_run_id(lenser_id: UUID, key: str, expired: UUID | None = None) -> UUID:
    name = f"lenserfight:run:{lenser_id}:{key}" + (f":after:{expired}" if expired else "")
    return uuid5(NAMESPACE_URL, name)


class _KeyExpired(Exception):
    def __init__(self, run_id: UUID) -> None:
        super().__init__(str(run_id))
        self.run_id = run_id


def no_run() -> Run:
    raise RunNotFound()


@dataclass(frozen=True)
class Accepted:
    run_id: UUID
    status: str
    created: bool


class RunUseCases(UseCases):
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        appended: Callable[[], None] | None = None,
        idempotency_window: timedelta = IDEMPOTENCY_WINDOW,
        cancel_grace: timedelta = timedelta(seconds=30),
    ) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended, recorded=count_run_events))
        self.idempotency_window = idempotency_window
        self.cancel_grace = cancel_grace

    async def queue(self, request: RunRequest, *, metadata: dict[str, Any]) -> Accepted:
        if request.idempotency_key is None:
            return await self._queue(uuid4(), request, metadata)
        run_id = keyed_run_id(request.lenser_id, request.idempotency_key)
        while True:
            try:
                return await self._queue(run_id, request, metadata)
            except _KeyExpired as expired:
                run_id = keyed_run_id(request.lenser_id, request.idempotency_key, expired.run_id)

    async def _queue(self, run_id: UUID, request: RunRequest, metadata: dict[str, Any]) -> Accepted:
        def decide(decision: Decision, run: Run) -> Accepted:
            if run.queued is not None:
                if decision.now - run.queued.queued_at >= self.idempotency_window:
                    raise _KeyExpired(run_id)
                if run.queued.request_hash != request.request_hash:
                    raise IdempotencyConflict()
                return Accepted(run_id, run.status, created=False)
            run.queue(
                RunQueued(
                    run_id=run_id,
                    lenser_id=request.lenser_id,
                    kind=request.kind,
                    lens_id=request.target_id if request.kind == "lens" else None,
                    workflow_id=request.target_id if request.kind == "workflow" else None,
                    version=request.version,
                    funding_source=request.funding_source,
                    byok_key_ref_id=request.byok_key_ref_id,
                    model_override=request.model_override,
                    provider_override=request.provider_override,
                    inputs=request.inputs,
                    nodes=request.nodes,
                    edges=request.edges,
                    budget_credits=request.budget_credits,
                    deadline_at=deadline_of(decision.now, request.deadline_seconds),
                    queued_at=decision.now,
                    request_hash=request.request_hash,
                    idempotency_key=request.idempotency_key,
                    request_id=request.request_id,
                )
            )
            return Accepted(run_id, run.status, created=True)

        return await self.commands.submit(Command(RUNS, run_id, decide, metadata))

    async def cancel(self, caller: UUID, run_id: UUID, *, metadata: dict[str, Any]) -> bool:
        def decide(decision: Decision, run: Run) -> bool:
            return run.cancel(caller, decision.now)

        return await self.commands.submit(Command(RUNS, run_id, decide, metadata, new=no_run))

    # --- what run workers report ---------------------------------------------------------------

    async def start_node(
        self, run_id: UUID, node_id: str, attempt: int, *, metadata: dict[str, Any]
    ) -> NodeWork | None:
        def decide(decision: Decision, run: Run) -> NodeWork | None:
            return run.start_node(node_id, attempt, decision.now)

        return await self.commands.submit(Command(RUNS, run_id, decide, metadata, new=no_run))

    async def node_succeeded(self, work: NodeWork, execution: Execution, *, metadata: dict[str, Any]) -> None:
        def decide(decision: Decision, run: Run) -> None:
            run.node_succeeded(work.node_id, work.attempt, execution, decision.now)

        await self.commands.submit(Command(RUNS, work.run_id, decide, metadata, new=no_run))

    async def stream_delta(self, work: NodeWork, delta: str, *, metadata: dict[str, Any]) -> bool:
        """Appends ``delta`` to the node attempt's text; ``False``: refused, the worker should stop
        (``Run.must_stop``)."""

        def decide(decision: Decision, run: Run) -> bool:
            return run.stream_delta(work.node_id, work.attempt, delta, decision.now)

        return await self.commands.submit(Command(RUNS, work.run_id, decide, metadata, new=no_run))

    async def stopping(self, run_id: UUID) -> bool:
        """Whether the run is stopping or over (its read model: a cheap check a running node's
        worker makes every second, should it miss the run's events)."""
        async with self.commands.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT status NOT IN ('queued', 'running') OR cancel_requested_at IS NOT NULL"
                " OR deadline_at <= now() AS stopping FROM runs WHERE run_id = $1",
                run_id,
            )
        return row is None or bool(row["stopping"])

    async def node_stopped(
        self, work: NodeWork, charge: Charge | None, why: StopReason, *, metadata: dict[str, Any]
    ) -> None:
        def decide(decision: Decision, run: Run) -> None:
            run.node_stopped(work.node_id, work.attempt, charge, decision.now, why)

        await self.commands.submit(Command(RUNS, work.run_id, decide, metadata, new=no_run))

    async def node_failed(
        self,
        work: NodeWork,
        code: str,
        message: str,
        *,
        transient: bool,
        metadata: dict[str, Any],
        credits: int = 0,
    ) -> None:
        def decide(decision: Decision, run: Run) -> None:
            run.node_failed(
                work.node_id,
                work.attempt,
                code,
                message,
                transient=transient,
                now=decision.now,
                credits=credits,
            )

        await self.commands.submit(Command(RUNS, work.run_id, decide, metadata, new=no_run))

    async def time_out_due_runs(self, *, limit: int = 100) -> int:
        """Time out the active runs past their deadline (a periodic job: a run whose node hangs,
        or whose nodes wait behind a broker outage, still ends ``timed_out`` at its deadline,
        not only when a worker next touches it; one whose nodes run, ``cancel_grace`` later if
        their workers have not reported), and end the runs whose cancel request is older than
        ``cancel_grace`` (``Run.time_out_if_due``). Returns how many it ended."""
        async with self.commands.pool.acquire() as conn:
            due = await conn.fetch(
                "(SELECT run_id FROM runs WHERE status IN ('queued', 'running') AND deadline_at <= now()"
                " ORDER BY deadline_at LIMIT $1)"
                " UNION (SELECT run_id FROM runs WHERE status = 'running'"
                " AND cancel_requested_at <= now() - $2::interval ORDER BY cancel_requested_at LIMIT $1)",
                limit,
                self.cancel_grace,
            )
        metadata = {"actor": "deadline-sweep"}
        timed_out = 0
        for row in due:
            timed_out += await self.time_out_if_due(
                row["run_id"], metadata={**metadata, "correlationId": str(row["run_id"])}
            )
        return timed_out

    async def time_out_if_due(self, run_id: UUID, *, metadata: dict[str, Any]) -> bool:
        def decide(decision: Decision, run: Run) -> bool:
            return run.time_out_if_due(decision.now, self.cancel_grace)

        return await self.commands.submit(Command(RUNS, run_id, decide, metadata, new=no_run))
