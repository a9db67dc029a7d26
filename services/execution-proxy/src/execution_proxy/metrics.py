"""What operators watch on /metrics besides the kit's HTTP and messaging figures."""

from prometheus_client import Counter, Histogram

from lf_eventstore import RecordedEvent

PROVIDER_LATENCY = Histogram(
    "execution_provider_seconds",
    "Time from sending a provider request to its last byte",
    ["provider", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
PROVIDER_ERRORS = Counter("execution_provider_errors_total", "Provider failures", ["provider", "kind"])
TOKENS = Counter("execution_tokens_total", "Tokens used by ended executions", ["provider", "direction"])
CREDITS = Counter("execution_credits_total", "Credits reserved and charged", ["movement"])
DISCONNECTS = Counter(
    "execution_client_disconnects_total", "Streams whose client went away before the end", ["provider"]
)


def count_recorded(events: list[RecordedEvent]) -> None:
    """Counted once the events are committed (``CommandRunner.recorded``)."""
    for event in events:
        d = event.data
        if event.type == "ExecutionStarted" and d["reserved_credits"]:
            CREDITS.labels("reserved").inc(d["reserved_credits"])
        elif event.type == "ExecutionSucceeded":
            TOKENS.labels(d["provider"], "input").inc(
                d["input_tokens"] + d["cache_read_tokens"] + d["cache_write_tokens"]
            )
            TOKENS.labels(d["provider"], "output").inc(d["output_tokens"])
            CREDITS.labels("charged").inc(d["credits_charged"])
            if d["client_disconnected"]:
                DISCONNECTS.labels(d["provider"]).inc()
