"""What operators watch on /metrics besides the kit's HTTP and messaging figures."""

from prometheus_client import Counter

from lf_eventstore import RecordedEvent

CREDITS = Counter("wallet_credits_total", "Credits moved by committed wallet commands", ["movement"])

# Which figure of which event counts as which movement.
MOVEMENTS = {
    "CreditsDeposited": ("deposited", "amount"),
    "CreditsReserved": ("reserved", "amount"),
    "ReservationCaptured": ("captured", "captured"),
    "ReservationReleased": ("released", "amount"),
    "PurchaseReversed": ("reversed", "amount"),
}


def count_credits(events: list[RecordedEvent]) -> None:
    for event in events:
        if event.type in MOVEMENTS:
            movement, field = MOVEMENTS[event.type]
            CREDITS.labels(movement).inc(event.data[field])
