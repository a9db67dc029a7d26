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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
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


class NodeRetried(DomainEvent):
    run_id: UUID
    node_id: str
    attempt: int
    next_attempt: int
    error_code: str
    error_message: str


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
    run_id: UUID
    node_id: str
    credits: int = 0
    spent_credits: int


class NodeSkipped(DomainEvent):
    run_id: UUID
    node_id: str
    reason: str  # "upstream_failed" | "condition_false"


class NodeTimedOut(DomainEvent):
    run_id: UUID
    node_id: str


RUN_EVENTS = (
    RunQueued,
    RunStarted,
    RunCompleted,
    RunFailed,
    RunCancelled,
    RunTimedOut,
    NodeQueued,
    NodeStarted,
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


@dataclass
class NodeState:
    status: str = "pending"  # pending | queued | running | completed | failed | skipped | ...
    attempt: int = 0
    params: dict[str, Any] | None = None
    output: str | None = None


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

    # --- queries -----------------------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def owned_by(self, lenser_id: UUID) -> bool:
        return self.queued is not None and self.queued.lenser_id == lenser_id

    def sinks(self) -> set[str]:
        sources = {edge.source for edge in self.edges}
        return {node for node in self.plan if node not in sources}

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
        if self._past_deadline(now):
            self._time_out()
            return None
        budget = self.queued.budget_credits if self.queued else None
        if state.status == "queued" and budget is not None and self.spent >= budget:
            self._cancel("budget_exceeded")
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
        )

    def node_succeeded(self, node_id: str, attempt: int, execution: Execution, now: datetime) -> None:
        if not self._is_running(node_id, attempt):
            return
        if self._past_deadline(now):
            # Charged all the same: the credits are spent whether or not the run may use them.
            self.spent += execution.credits
            self._time_out()
            return
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
            self._cancel("budget_exceeded")
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
        if transient and attempt < MAX_ATTEMPTS and not self._past_deadline(now):
            self._record(
                NodeRetried(
                    run_id=self._id,
                    node_id=node_id,
                    attempt=attempt,
                    next_attempt=attempt + 1,
                    error_code=code,
                    error_message=message,
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

    def cancel(self, caller: UUID, reason: str = "cancelled_by_user") -> bool:
        """Cancel for ``caller`` (someone else's run is not found); ``False`` if already over."""
        if not self.owned_by(caller):
            raise RunNotFound()
        if self.terminal:
            return False
        self._cancel(reason)
        return True

    def time_out_if_due(self, now: datetime) -> bool:
        if self.terminal or not self._past_deadline(now):
            return False
        self._time_out()
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

    def _cancel(self, reason: str) -> None:
        for node_id, state in self.nodes.items():
            if state.status in ("queued", "running"):
                self._record(NodeCancelled(run_id=self._id, node_id=node_id, spent_credits=self.spent))
        self._record(RunCancelled(run_id=self._id, reason=reason, spent_credits=self.spent))

    def _time_out(self) -> None:
        for node_id, state in self.nodes.items():
            if state.status in ("queued", "running"):
                self._record(NodeTimedOut(run_id=self._id, node_id=node_id))
        self._record(RunTimedOut(run_id=self._id, spent_credits=self.spent))

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
            case RunCompleted() | RunFailed() | RunCancelled() | RunTimedOut():
                self.status = event.status
                self.spent = event.spent_credits
            case NodeQueued():
                self.nodes[event.node_id] = NodeState("queued", event.attempt, event.params)
            case NodeStarted():
                self.nodes[event.node_id].status = "running"
            case NodeRetried():
                self.nodes[event.node_id].status = "retrying"
            case NodeCompleted():
                state = self.nodes[event.node_id]
                state.status, state.output = "completed", event.output
                self.spent = event.spent_credits
            case NodeFailed():
                self.nodes[event.node_id].status = "failed"
                self.spent = event.spent_credits
            case NodeCancelled():
                self.nodes[event.node_id].status = "cancelled"
            case NodeSkipped():
                self.nodes[event.node_id].status = "skipped"
            case NodeTimedOut():
                self.nodes[event.node_id].status = "timed_out"

    # Runs are short: no snapshots are taken (snapshot_every is far above any run's length), so
    # these are the aggregate's required forms only, and they round-trip through the events.
    def to_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError("runs are not snapshotted")

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError("runs are not snapshotted")


def deadline_of(now: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)
