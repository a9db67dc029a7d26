"""A rebuild of an inline projection applies each stream's events in version order, whatever order
the log is read in (reading order can invert two transactions on one stream)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from lf_eventstore import Checkpoint, RecordedEvent
from lf_projections.rebuild import StreamOrder


def event(stream: str, version: int, transaction_id: int, position: int) -> RecordedEvent:
    return RecordedEvent(position, transaction_id, stream, version, uuid4(), "E", {}, {}, datetime.now(UTC))


def test_an_event_read_before_its_predecessor_waits_for_it_across_batches():
    # Stream s: v1 (tx 10), then v2 committed by tx 30, then v3 and v4 by tx 20, which took its id
    # before tx 30 but queued on the stream's lock behind it. Reading order: v1, v3, v4, v2.
    v1, v2, v3, v4 = event("s", 1, 10, 1), event("s", 2, 30, 3), event("s", 3, 20, 4), event("s", 4, 20, 5)
    other = event("t", 1, 20, 2)
    before = {
        v2.position: Checkpoint(10, 1),
        v3.position: Checkpoint(30, 3),
        v4.position: Checkpoint(20, 4),
    }
    order = StreamOrder()
    first = order.release([v1, other, v3], before)
    assert [(e.stream_id, e.version) for e in first] == [("s", 1), ("t", 1)]
    second = order.release([v4, v2], before)
    assert [(e.stream_id, e.version) for e in second] == [("s", 2), ("s", 3), ("s", 4)]
    assert order.holding == 0


def test_events_in_order_pass_straight_through():
    events = [event("s", 1, 10, 1), event("s", 2, 11, 2), event("t", 1, 11, 3)]
    before = {2: Checkpoint(10, 1)}
    assert StreamOrder().release(events, before) == events
