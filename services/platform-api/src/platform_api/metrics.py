"""platform-api's run metrics, counted from the run events each committed command recorded
(``CommandRunner.recorded``), so a metric never counts what did not happen."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from lf_eventstore import RecordedEvent

RUNS_QUEUED = Counter("platform_runs_queued_total", "Runs queued", ["kind"])
RUNS_ENDED = Counter("platform_runs_ended_total", "Runs that reached a terminal status", ["status"])
NODES_SETTLED = Counter("platform_run_nodes_total", "Run nodes settled, by outcome", ["outcome"])
NODE_LATENCY = Histogram(
    "platform_run_node_seconds",
    "How long execution-proxy took for a node that completed",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

_ENDINGS = {"RunCompleted", "RunFailed", "RunCancelled", "RunTimedOut"}
_NODE_OUTCOMES = {
    "NodeCompleted": "completed",
    "NodeFailed": "failed",
    "NodeRetried": "retried",
    "NodeSkipped": "skipped",
    "NodeCancelled": "cancelled",
    "NodeTimedOut": "timed_out",
}


def count_run_events(events: list[RecordedEvent]) -> None:
    for event in events:
        if event.type == "RunQueued":
            RUNS_QUEUED.labels(event.data["kind"]).inc()
        elif event.type in _ENDINGS:
            RUNS_ENDED.labels(event.data["status"]).inc()
        elif outcome := _NODE_OUTCOMES.get(event.type):
            NODES_SETTLED.labels(outcome).inc()
            if event.type == "NodeCompleted" and event.data.get("latency_ms") is not None:
                NODE_LATENCY.observe(event.data["latency_ms"] / 1000)
