"""A run's stored events as its live event stream shows them (the runs contract, REFERENCE.md).

Pure: the run stream's class names map to the wire types of seed 001's SSE, terminal events to the
run status the final ``done`` names, and stored snake_case payload keys become camelCase.
"""

from __future__ import annotations

from typing import Any

WIRE_TYPES: dict[str, str] = {
    "RunQueued": "run.status.changed",  # the first event of every run (status "queued")
    "RunStarted": "run.started",
    "RunStatusChanged": "run.status.changed",
    "RunCancelRequested": "run.status.changed",  # status "running", cancelRequested: true
    "RunCompleted": "run.completed",
    "RunFailed": "run.failed",
    "RunCancelled": "run.cancelled",
    "RunTimedOut": "run.timed_out",
    "NodeQueued": "node.queued",
    "NodeStarted": "node.started",
    "NodeStreamDelta": "node.stream.delta",
    "NodeLog": "node.log",
    "NodeRetried": "node.retried",
    "NodeCompleted": "node.completed",
    "NodeFailed": "node.failed",
    "NodeCancelled": "node.cancelled",
    "NodeSkipped": "node.skipped",
    "NodeTimedOut": "node.timed_out",
}

TERMINAL_STATUS: dict[str, str] = {
    "RunCompleted": "succeeded",
    "RunFailed": "failed",
    "RunCancelled": "canceled",
    "RunTimedOut": "timed_out",
}

STREAM_PREFIX = "run-"
FIRST_EVENT = "RunQueued"
"""The event every run stream starts with; its ``lenser_id`` is the run's owner."""


def stream_id(run_id: object) -> str:
    return f"{STREAM_PREFIX}{run_id}"


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_wire(event_type: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The wire type and payload of a stored run event. Only the event's own (top-level) keys are
    renamed: values such as a lens's params or a node's output are the lenser's, kept as written."""
    return WIRE_TYPES[event_type], {camel(key): value for key, value in data.items()}


def terminal_status(event_type: str) -> str | None:
    """The status a run ends in with this event; None while the run goes on."""
    return TERMINAL_STATUS.get(event_type)


def owner_of(first_event_type: str, first_event_data: dict[str, Any]) -> str | None:
    """The lenser who owns the run whose stream starts with this event (None: not a run stream)."""
    if first_event_type != FIRST_EVENT:
        return None
    owner = first_event_data.get("lenser_id")
    return None if owner is None else str(owner)
