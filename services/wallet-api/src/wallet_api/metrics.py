"""What operators watch on /metrics besides the kit's HTTP and messaging figures."""

from prometheus_client import Counter

from lf_eventstore import RecordedEvent

CREDITS = Counter("wallet_credits_total", "Credits moved by committed wallet commands", ["movement"])

# Which figures of which event count as which movements. ``charged_late`` and ``uncollected`` are
# settlements that arrived after their reservation expired; ``refused`` purchases were not credited.
MOVEMENTS = {
    "CreditsDeposited": [("deposited", "amount")],
    "CreditsReserved": [("reserved", "amount")],
    "ReservationCaptured": [("captured", "captured")],
    "ExpiredReservationCharged": [("charged_late", "charged"), ("uncollected", "uncollected")],
    "ReservationReleased": [("released", "amount")],
    "PurchaseReversed": [("reversed", "amount")],
    "PurchaseRefused": [("refused", "credits")],
}


def count_credits(events: list[RecordedEvent]) -> None:
    for event in events:
        for movement, field in MOVEMENTS.get(event.type, []):
            CREDITS.labels(movement).inc(event.data[field])
