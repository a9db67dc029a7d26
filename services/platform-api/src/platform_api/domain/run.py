"""A run: one lens, or one workflow's DAG of lens nodes, executed node by node. Event-sourced,
stream ``run-<runId>``; the stream is also the run's SSE event list (runs-contract), so every
event here is one a client may see, and none is ever written after the run's terminal event.

The aggregate decides, purely, what happens next; run workers do the I/O (execution-proxy) and
report back through ``start_node`` / ``node_succeeded`` / ``node_failed``. Every method is
idempotent under a repeated delivery: a report about an attempt that is not the node's current
running attempt changes nothing, and starting an attempt already running hands the same work out
again (its execution-proxy ``referenceId`` is the same, so it is never charged twice).

Scheduling: a node is queued once each of its sources has settled; it runs if it has no incoming
edge or at least one incoming edge delivered (its source completed and its condition held),
else it is skipped (``condition_false``). A failed (or skipped-for-failure) node skips every
dependant transitively (``upstream_failed``). When every node has settled the run completes,
or fails if any node failed. Budget: a node settling with the run's spent credits past
``budget_credits`` cancels the run (``budget_exceeded``); a node is not started once nothing of
the budget is left. Deadline: a node is not started, nor its success accepted, past the run's
deadline: the run times out (``RunTimedOut``) instead.

Streaming: a running attempt's text arrives as ``NodeStreamDelta`` events (``stream_delta``); the
deltas of an attempt concatenate to its output. A delta is refused (not recorded) unless its
attempt is the node's current running one, the run is not stopping and its deadline has not
passed: the refusal is one way a worker learns to stop.

Stopping mid-node (cancel, budget, deadline): a run with nodes running does not end at once, or
what their executions are charged would be lost. Cancel (the lenser's, or ``budget_exceeded``)
cancels the queued nodes and records ``RunCancelRequested``; each running node's worker cancels
its execution in execution-proxy and reports what it was charged (``node_stopped``:
``NodeCancelled``), and the last one's report ends the run (``RunCancelled``). Past the deadline
likewise: each running node reports ``NodeTimedOut`` with its charge, the last ends the run
(``RunTimedOut``). A worker that never reports is covered by the deadline sweep
(``time_out_if_due`` with a grace): it ends the run ``grace`` after the cancel request (or the
deadline), its silent nodes with ``credits: None`` (charged by execution-proxy under their
reference id, but unknown here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Self
from uuid import UUID

from lf_eventstore import Aggregate, DomainEvent, by_name
from platform_api.domain.errors import InvalidDefinition, RunNotFound
from platform_api.domain.run_plan import (
    PlanEdge,
    PlanNode,
    edge_inputs,
    plan_node_of,
    render,
    resolve_params,
)

MAX_ATTEMPTS = 3
"""A node's attempts when its provider's errors are transient (then ``node_failed`` for good)."""

TERMINAL = ("succeeded", "failed", "canceled", "timed_out")
SETTLED = ("completed", "failed", "skipped", "cancelled", "timed_out")


# --- events (stored under their class names; the wire types are run_events.WIRE_TYPES) ------------


class RunQueued(DomainEvent):
    run_id: UUID
    lenser_id: UUID
    kind: str  # "lens" | "workflow"
    lens_id: UUID | None = None
    workflow_id: UUID | None = None
    version: int
    funding_source: str
    byok_key_ref_id: str | None = None
    model_override: str | None = None
    provider_override: str | None = None
    status: str = "queued"
    inputs: dict[str, Any]
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    budget_credits: int | None = None
    deadline_at: datetime | None = None
    queued_at: datetime
    request_hash: str
    idempotency_key: str | None = None
    request_id: UUID


class RunStarted(DomainEvent):
    run_id: UUID
    status: str = "running"


class RunCompleted(DomainEvent):
    run_id: UUID
    status: str = "succeeded"
    spent_credits: int
    primary_node_ids: list[str]


class RunFailed(DomainEvent):
    run_id: UUID
    status: str = "failed"
    error_code: str
    error_message: str
    spent_credits: int


class RunCancelRequested(DomainEvent):
    """Cancel asked while nodes run: nothing new starts; the run ends once they have reported."""

    run_id: UUID
    status: str = "running"
    cancel_requested: bool = True
    reason: str
    requested_at: datetime


class RunCancelled(DomainEvent):
    run_id: UUID
    status: str = "canceled"
    reason: str
    spent_credits: int


class RunTimedOut(DomainEvent):
    run_id: UUID
    status: str = "timed_out"
    spent_credits: int


class NodeQueued(DomainEvent):
    run_id: UUID
    node_id: str
    attempt: int
    params: dict[str, Any]


class NodeStarted(DomainEvent):
    run_id: UUID
    node_id: str
    attempt: int


class NodeStreamDelta(DomainEvent):
    """Text of a running attempt received since its previous delta (coalesced by the worker)."""

    run_id: UUID
    node_id: str
    attempt: int
    delta: str


class NodeRetried(DomainEvent):
    run_id: UUID
    node_id: str
    attempt: int
    next_attempt: int
    error_code: str
    error_message: str
    credits: int = 0
    spent_credits: int | None = None


class NodeCompleted(DomainEvent):
    run_id: UUID
    node_id: str
    attempt: int
    output: str
    credits: int
    spent_credits: int
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    execution_id: str | None = None
    latency_ms: int | None = None
    primary: bool


class NodeFailed(DomainEvent):
    run_id: UUID
    node_id: str
    attempt: int
    error_code: str
    error_message: str
    credits: int = 0
    spent_credits: int


class NodeCancelled(DomainEvent):
    """``credits``: what its execution was charged (0: none had started); ``None``: its worker
    never reported, so the charge execution-proxy recorded for the attempt is unknown here."""

    run_id: UUID
    node_id: str
    attempt: int | None = None
    credits: int | None = 0
    input_tokens: int = 0
    output_tokens: int = 0
    spent_credits: int


class NodeSkipped(DomainEvent):
    run_id: UUID
    node_id: str
    reason: str  # "upstream_failed" | "condition_false"


class NodeTimedOut(DomainEvent):
    """``credits`` as ``NodeCancelled``'s (a node cut at the deadline is cancelled in the proxy)."""

    run_id: UUID
    node_id: str
    attempt: int | None = None
    credits: int | None = 0
    input_tokens: int = 0
    output_tokens: int = 0
    spent_credits: int | None = None


RUN_EVENTS = (
    RunQueued,
    RunStarted,
    RunCompleted,
    RunFailed,
    RunCancelRequested,
    RunCancelled,
    RunTimedOut,
    NodeQueued,
    NodeStarted,
    NodeStreamDelta,
    NodeRetried,
    NodeCompleted,
    NodeFailed,
    NodeCancelled,
    NodeSkipped,
    NodeTimedOut,
)


@dataclass(frozen=True)
class NodeWork:
    """What a run worker sends to execution-proxy for one node attempt."""

    run_id: UUID
    node_id: str
    attempt: int
    lenser_id: UUID
    funding_source: str
    byok_key_ref_id: str | None
    model: str
    provider_override: str | None
    prompt: str
    deadline_at: datetime | None
    streamed: int = 0
    """Characters of this attempt's text already recorded as deltas (by an earlier delivery)."""

    @property
    def reference_id(self) -> str:
        """One per node attempt: a redelivered attempt is answered from execution-proxy's record."""
        return f"{self.run_id}:{self.node_id}:{self.attempt}"


@dataclass(frozen=True)
class Execution:
    """What execution-proxy answered for a node attempt that succeeded."""

    output: str
    credits: int
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    execution_id: str | None = None
    latency_ms: int | None = None
    cancelled: bool = False
    """Stopped in execution-proxy before its end (by a cancel): charged, but no result."""
    cut_short: bool = False
    """The provider did not finish it (execution-proxy stopping mid-way, a cancel): charged, but
    its output is the beginning of an answer, not a result."""


StopReason = Literal["deadline", "node_timeout", "run_stopping"]
"""Why a worker stopped its node's execution (``Run.node_stopped``)."""


@dataclass(frozen=True)
class Charge:
    """What execution-proxy charged for an attempt that was stopped (cancelled or cut)."""

    credits: int
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class NodeState:
    status: str = "pending"  # pending | queued | running | completed | failed | skipped | ...
    attempt: int = 0
    params: dict[str, Any] | None = None
    output: str | None = None
    streamed: int = 0


class Run(Aggregate):
    event_types = by_name(*RUN_EVENTS)

    def __init__(self) -> None:
        super().__init__()
        self.queued: RunQueued | None = None
        self.status = "new"
        self.plan: dict[str, PlanNode] = {}
        self.edges: list[PlanEdge] = []
        self.nodes: dict[str, NodeState] = {}
        self.spent = 0
        self.cancel_requested: RunCancelRequested | None = None

    # --- queries -----------------------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def owned_by(self, lenser_id: UUID) -> bool:
        return self.queued is not None and self.queued.lenser_id == lenser_id

    def sinks(self) -> set[str]:
        sources = {edge.source for edge in self.edges}
        return {node for node in self.plan if node not in sources}

    def running(self) -> list[str]:
        return [node_id for node_id, state in self.nodes.items() if state.status == "running"]

    def must_stop(self, node_id: str, attempt: int, now: datetime) -> bool:
        """Whether the worker of this attempt should stop its execution: the attempt is no longer
        the node's running one, the run is being cancelled, or its deadline has passed."""
        return (
            not self._is_running(node_id, attempt)
            or self.cancel_requested is not None
            or self._past_deadline(now)
        )

    # --- commands ----------------------------------------------------------------------------

    def queue(self, queued: RunQueued) -> None:
        """Record the run and queue its root nodes. Refuses (``InvalidDefinition``) a node whose
        required parameters nothing can fill: not the inputs, its overrides, a default nor an
        incoming edge (for a lens run, ``params.<name>``; a workflow's, ``nodes.<id>.<name>``)."""
        problems = []
        edges = [PlanEdge.of(e) for e in queued.edges]
        for data in queued.nodes:
            node = plan_node_of(data)
            fed = {e.target_param for e in edges if e.target == node.id}
            given = {**queued.inputs, **node.param_overrides}
            for parameter in node.lens.parameters:
                if parameter.required and parameter.default is None and given.get(parameter.name) is None:
                    if parameter.name not in fed:
                        field = (
                            f"params.{parameter.name}"
                            if queued.kind == "lens"
                            else f"nodes.{node.id}.{parameter.name}"
                        )
                        problems.append(
                            {"field": field, "message": f"required parameter '{parameter.name}' is missing"}
                        )
        if problems:
            raise InvalidDefinition(problems)
        self._record(queued)
        for node_id in self.plan:
            if not any(edge.target == node_id for edge in self.edges):
                self._queue_node(node_id, attempt=1, outputs={})

    def start_node(self, node_id: str, attempt: int, now: datetime) -> NodeWork | None:
        """The work of ``node_id``'s ``attempt``, once it is recorded as started; ``None`` when
        there is nothing to do (run over, attempt not current, node settled) or the run just ended
        (deadline passed, budget spent)."""
        state = self.nodes.get(node_id)
        if (
            self.terminal
            or state is None
            or state.attempt != attempt
            or state.status not in ("queued", "running")
        ):
            return None
        if state.status == "queued" and self._past_deadline(now):
            self._time_out_unless_running()
            return None
        # A running node handed out again (its worker died) while the run stops: its new worker
        # sees that at once and stops the execution, reporting its charge.
        budget = self.queued.budget_credits if self.queued else None
        if state.status == "queued" and budget is not None and self.spent >= budget:
            self._request_cancel("budget_exceeded", now)
            return None
        if self.status == "queued":
            self._record(RunStarted(run_id=self._id))
        if state.status == "queued":
            self._record(NodeStarted(run_id=self._id, node_id=node_id, attempt=attempt))
        plan = self.plan[node_id]
        try:
            values = resolve_params(plan.lens, {**(state.params or {})})
        except InvalidDefinition as missing:
            self.node_failed(node_id, attempt, "missing_parameters", str(missing), transient=False, now=now)
            return None
        assert self.queued is not None
        return NodeWork(
            run_id=self._id,
            node_id=node_id,
            attempt=attempt,
            lenser_id=self.queued.lenser_id,
            funding_source=self.queued.funding_source,
            byok_key_ref_id=self.queued.byok_key_ref_id,
            model=self.queued.model_override or plan.model_id,
            provider_override=self.queued.provider_override,
            prompt=render(plan.lens.template, values),
            deadline_at=self.queued.deadline_at,
            streamed=state.streamed,
        )

    def stream_delta(self, node_id: str, attempt: int, delta: str, now: datetime) -> bool:
        """Record text of a running attempt; ``False`` (nothing recorded) when its worker should
        stop instead (``must_stop``)."""
        if self.must_stop(node_id, attempt, now):
            return False
        if delta:
            self._record(NodeStreamDelta(run_id=self._id, node_id=node_id, attempt=attempt, delta=delta))
        return True

    def node_stopped(
        self, node_id: str, attempt: int, charge: Charge | None, now: datetime, why: StopReason
    ) -> None:
        """The attempt's execution was stopped (cancelled in execution-proxy); ``why``, as its
        worker saw it: ``deadline`` (its wait cut at the run's deadline, on the worker's clock),
        ``node_timeout`` (its own NODE_TIMEOUT_SECONDS) or ``run_stopping`` (the run is being
        cancelled or is past its deadline, as the database judged it); ``charge``: what the proxy
        charged for it (``None``: unknown). The last running node's report ends the run.

        ``deadline`` is trusted, not judged again on the database's clock: a worker whose clock is
        a little ahead would otherwise have its cut taken for a node timeout, retried, cut again,
        until the run failed instead of timing out."""
        if not self._is_running(node_id, attempt):
            return
        deadline = why == "deadline"
        if why == "node_timeout" or (
            not deadline and self.cancel_requested is None and not self._past_deadline(now)
        ):
            # Stopped for no reason of the run's (the worker's own NODE_TIMEOUT_SECONDS): a
            # transient failure, retried as a new attempt.
            self.node_failed(
                node_id,
                attempt,
                "node_timeout",
                "the node's execution took too long",
                transient=True,
                now=now,
                credits=charge.credits if charge else 0,
            )
            return
        self._settle_stopped(node_id, attempt, charge)
        self._end_if_stopped(now, deadline_passed=deadline)

    def node_succeeded(self, node_id: str, attempt: int, execution: Execution, now: datetime) -> None:
        if not self._is_running(node_id, attempt):
            return
        if self.cancel_requested is not None or self._past_deadline(now):
            # Ended before its worker saw the run stop: charged all the same, its output unused.
            charge = Charge(execution.credits, execution.input_tokens, execution.output_tokens)
            self._settle_stopped(node_id, attempt, charge)
            self._end_if_stopped(now)
            return
        # The text not yet recorded as deltas, in the same command: an attempt's deltas
        # concatenate to its output (what was recorded is the output's beginning: one stream).
        rest = execution.output[self.nodes[node_id].streamed :]
        if rest:
            self._record(NodeStreamDelta(run_id=self._id, node_id=node_id, attempt=attempt, delta=rest))
        self._record(
            NodeCompleted(
                run_id=self._id,
                node_id=node_id,
                attempt=attempt,
                output=execution.output,
                credits=execution.credits,
                spent_credits=self.spent + execution.credits,
                input_tokens=execution.input_tokens,
                output_tokens=execution.output_tokens,
                model=execution.model,
                provider=execution.provider,
                execution_id=execution.execution_id,
                latency_ms=execution.latency_ms,
                primary=node_id in self.sinks(),
            )
        )
        budget = self.queued.budget_credits if self.queued else None
        if budget is not None and self.spent > budget:
            self._request_cancel("budget_exceeded", now)
            return
        self._advance()

    def node_failed(
        self,
        node_id: str,
        attempt: int,
        code: str,
        message: str,
        *,
        transient: bool,
        now: datetime,
        credits: int = 0,
    ) -> None:
        if not self._is_running(node_id, attempt):
            return
        if self.cancel_requested is not None or self._past_deadline(now):
            self._settle_stopped(node_id, attempt, Charge(credits))
            self._end_if_stopped(now)
            return
        if transient and attempt < MAX_ATTEMPTS:
            self._record(
                NodeRetried(
                    run_id=self._id,
                    node_id=node_id,
                    attempt=attempt,
                    next_attempt=attempt + 1,
                    error_code=code,
                    error_message=message,
                    credits=credits,
                    spent_credits=self.spent + credits,
                )
            )
            self._record(
                NodeQueued(
                    run_id=self._id,
                    node_id=node_id,
                    attempt=attempt + 1,
                    params=self.nodes[node_id].params or {},
                )
            )
            return
        self._record(
            NodeFailed(
                run_id=self._id,
                node_id=node_id,
                attempt=attempt,
                error_code=code,
                error_message=message,
                credits=credits,
                spent_credits=self.spent + credits,
            )
        )
        for dependant in self._dependants(node_id):
            if self.nodes[dependant].status == "pending":
                self._record(NodeSkipped(run_id=self._id, node_id=dependant, reason="upstream_failed"))
        self._advance()

    def cancel(self, caller: UUID, now: datetime, reason: str = "cancelled_by_user") -> bool:
        """Cancel for ``caller`` (someone else's run is not found); ``False`` if already over.
        With nodes running, the run runs on until they have stopped (``RunCancelRequested``)."""
        if not self.owned_by(caller):
            raise RunNotFound()
        if self.terminal:
            return False
        self._request_cancel(reason, now)
        return True

    def time_out_if_due(self, now: datetime, grace: timedelta = timedelta(0)) -> bool:
        """The sweep: past the deadline, end the run ``timed_out``, but while nodes run (their
        workers report their charge) only once ``grace`` has passed too; a cancel requested
        more than ``grace`` ago ends the run ``canceled``. Nodes still running then settle with
        ``credits: None``."""
        if self.terminal:
            return False
        if self.cancel_requested is not None:
            if now - self.cancel_requested.requested_at < grace:
                return False
        elif not self._past_deadline(now):
            return False
        elif self.running():
            assert self.queued is not None and self.queued.deadline_at is not None
            if now - self.queued.deadline_at < grace:
                return False
        for node_id in self.running():
            self._settle_stopped(node_id, self.nodes[node_id].attempt, None)
        self._end_if_stopped(now)
        return True

    # --- internals ---------------------------------------------------------------------------

    @property
    def _id(self) -> UUID:
        assert self.queued is not None
        return self.queued.run_id

    def _is_running(self, node_id: str, attempt: int) -> bool:
        state = self.nodes.get(node_id)
        return (
            not self.terminal and state is not None and state.status == "running" and state.attempt == attempt
        )

    def _past_deadline(self, now: datetime) -> bool:
        return (
            self.queued is not None and self.queued.deadline_at is not None and now >= self.queued.deadline_at
        )

    def _dependants(self, node_id: str) -> list[str]:
        """Every node downstream of ``node_id``, in a stable order."""
        found: list[str] = []
        frontier = [node_id]
        while frontier:
            current = frontier.pop(0)
            for edge in self.edges:
                if edge.source == current and edge.target not in found:
                    found.append(edge.target)
                    frontier.append(edge.target)
        return found

    def _queue_node(self, node_id: str, *, attempt: int, outputs: dict[str, dict[str, Any]]) -> None:
        assert self.queued is not None
        incoming = [edge for edge in self.edges if edge.target == node_id]
        params = {
            **self.queued.inputs,
            **self.plan[node_id].param_overrides,
            **edge_inputs(incoming, outputs),
        }
        self._record(NodeQueued(run_id=self._id, node_id=node_id, attempt=attempt, params=params))

    def _advance(self) -> None:
        """Queue (or skip) each pending node whose sources have all settled; end the run once
        every node has settled."""
        outputs = {
            node_id: {"output": state.output}
            for node_id, state in self.nodes.items()
            if state.status == "completed"
        }
        progressed = True
        while progressed:
            progressed = False
            for node_id, state in self.nodes.items():
                if state.status != "pending":
                    continue
                incoming = [edge for edge in self.edges if edge.target == node_id]
                if not all(self.nodes[edge.source].status in SETTLED for edge in incoming):
                    continue
                if edge_inputs(incoming, outputs) or not incoming:
                    self._queue_node(node_id, attempt=1, outputs=outputs)
                else:
                    self._record(NodeSkipped(run_id=self._id, node_id=node_id, reason="condition_false"))
                    progressed = True
        if all(state.status in SETTLED for state in self.nodes.values()):
            failed = [node_id for node_id, state in self.nodes.items() if state.status == "failed"]
            if failed:
                self._record(
                    RunFailed(
                        run_id=self._id,
                        error_code="node_failed",
                        error_message=f"node(s) failed: {', '.join(failed)}",
                        spent_credits=self.spent,
                    )
                )
            else:
                primary = [n for n in self.sinks() if self.nodes[n].status == "completed"]
                self._record(
                    RunCompleted(run_id=self._id, spent_credits=self.spent, primary_node_ids=sorted(primary))
                )

    def _request_cancel(self, reason: str, now: datetime) -> None:
        """Cancel at once when no node runs; else cancel the queued nodes and wait for the
        running ones' workers (``RunCancelRequested``; asked again, nothing more)."""
        if not self.running():
            self._cancel(reason)
            return
        if self.cancel_requested is not None:
            return
        for node_id, state in self.nodes.items():
            if state.status == "queued":
                self._record(NodeCancelled(run_id=self._id, node_id=node_id, spent_credits=self.spent))
        self._record(RunCancelRequested(run_id=self._id, reason=reason, requested_at=now))

    def _cancel(self, reason: str) -> None:
        """No node runs: the queued ones are cancelled (nothing executed) and the run with them."""
        for node_id, state in self.nodes.items():
            if state.status == "queued":
                self._record(NodeCancelled(run_id=self._id, node_id=node_id, spent_credits=self.spent))
        self._record(RunCancelled(run_id=self._id, reason=reason, spent_credits=self.spent))

    def _time_out_unless_running(self) -> None:
        """Past the deadline: the run ends ``timed_out`` now unless nodes run (their workers are
        cutting them, and the last report ends it)."""
        if not self.running():
            self._time_out()

    def _time_out(self) -> None:
        for node_id, state in self.nodes.items():
            if state.status == "queued":
                self._record(NodeTimedOut(run_id=self._id, node_id=node_id, spent_credits=self.spent))
        self._record(RunTimedOut(run_id=self._id, spent_credits=self.spent))

    def _settle_stopped(self, node_id: str, attempt: int, charge: Charge | None) -> None:
        """A running node stopped because the run stops: cancelled (cancel requested) or timed
        out (past the deadline), with its charge (``None``: its worker never reported)."""
        credits = None if charge is None else charge.credits
        fields: dict[str, Any] = {
            "run_id": self._id,
            "node_id": node_id,
            "attempt": attempt,
            "credits": credits,
            "input_tokens": charge.input_tokens if charge else 0,
            "output_tokens": charge.output_tokens if charge else 0,
            "spent_credits": self.spent + (credits or 0),
        }
        self._record(NodeCancelled(**fields) if self.cancel_requested is not None else NodeTimedOut(**fields))

    def _end_if_stopped(self, now: datetime, *, deadline_passed: bool = False) -> None:
        """Once no node runs: a requested cancel ends the run ``canceled``; past the deadline (or
        ``deadline_passed``: a worker cut its node there) it times out (the queued nodes with it)."""
        if self.running():
            return
        if self.cancel_requested is not None:
            self._record(
                RunCancelled(run_id=self._id, reason=self.cancel_requested.reason, spent_credits=self.spent)
            )
        elif deadline_passed or self._past_deadline(now):
            self._time_out()

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case RunQueued():
                self.queued = event
                self.status = "queued"
                self.plan = {data["id"]: plan_node_of(data) for data in event.nodes}
                self.edges = [PlanEdge.of(e) for e in event.edges]
                self.nodes = {node_id: NodeState() for node_id in self.plan}
            case RunStarted():
                self.status = "running"
            case RunCancelRequested():
                self.cancel_requested = event
            case RunCompleted() | RunFailed() | RunCancelled() | RunTimedOut():
                self.status = event.status
                self.spent = event.spent_credits
            case NodeQueued():
                self.nodes[event.node_id] = NodeState("queued", event.attempt, event.params)
            case NodeStarted():
                self.nodes[event.node_id].status = "running"
            case NodeStreamDelta():
                self.nodes[event.node_id].streamed += len(event.delta)
            case NodeRetried():
                self.nodes[event.node_id].status = "retrying"
                if event.spent_credits is not None:
                    self.spent = event.spent_credits
            case NodeCompleted():
                state = self.nodes[event.node_id]
                state.status, state.output = "completed", event.output
                self.spent = event.spent_credits
            case NodeFailed():
                self.nodes[event.node_id].status = "failed"
                self.spent = event.spent_credits
            case NodeCancelled():
                self.nodes[event.node_id].status = "cancelled"
                self.spent = event.spent_credits
            case NodeSkipped():
                self.nodes[event.node_id].status = "skipped"
            case NodeTimedOut():
                self.nodes[event.node_id].status = "timed_out"
                if event.spent_credits is not None:
                    self.spent = event.spent_credits

    # Streamed nodes make a run's stream long (a delta every NODE_DELTA_INTERVAL_MS per running
    # node), so runs are snapshotted: the plan and edges are derived again from ``RunQueued``.
    def to_snapshot(self) -> dict[str, Any]:
        assert self.queued is not None, "a run is snapshotted once it has events"
        return {
            "queued": self.queued.model_dump(mode="json"),
            "status": self.status,
            "nodes": {node_id: asdict(state) for node_id, state in self.nodes.items()},
            "spent": self.spent,
            "cancel_requested": None
            if self.cancel_requested is None
            else self.cancel_requested.model_dump(mode="json"),
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        run = cls()
        run._apply(RunQueued.model_validate(data["queued"]))
        run.status = data["status"]
        run.nodes = {node_id: NodeState(**state) for node_id, state in data["nodes"].items()}
        run.spent = data["spent"]
        if data["cancel_requested"] is not None:
            run.cancel_requested = RunCancelRequested.model_validate(data["cancel_requested"])
        return run


def deadline_of(now: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)
