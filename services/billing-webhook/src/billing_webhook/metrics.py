"""What operators watch on /metrics besides the kit's HTTP, log-follower and messaging figures.

Event-name labels are LemonSqueezy's names or ``other`` (``payloads.metric_label``), so a sender
cannot grow the label set. Processing counts are taken in the processor's transaction, before it
commits: a batch that rolls back and runs again counts twice (like ``events_appended_total``).
"""

from prometheus_client import Counter, Histogram

DELIVERIES_RECEIVED = Counter(
    "billing_deliveries_received_total",
    "Webhook deliveries answered 200: recorded now, or recognised as already recorded",
    ["event_name"],
)
DELIVERIES_REJECTED = Counter(
    "billing_deliveries_rejected_total", "Webhook deliveries refused, nothing recorded", ["reason"]
)
DELIVERIES_PROCESSED = Counter(
    "billing_deliveries_processed_total", "Recorded deliveries processed", ["event_name", "outcome"]
)
DELIVERIES_FAILED = Counter(
    "billing_deliveries_failed_total",
    "Recorded deliveries whose processing failed (replayable)",
    ["event_name"],
)
LEMONSQUEEZY_REQUESTS = Counter(
    "billing_lemonsqueezy_requests_total", "Calls to the LemonSqueezy API", ["operation", "outcome"]
)
LEMONSQUEEZY_LATENCY = Histogram(
    "billing_lemonsqueezy_request_duration_seconds", "Time LemonSqueezy took to answer", ["operation"]
)
