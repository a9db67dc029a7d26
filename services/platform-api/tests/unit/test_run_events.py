"""The run stream as the SSE shows it (the runs contract), and a slow client's bounded queue."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from lf_eventstore import RecordedEvent
from platform_api.application.run_events import Subscriber
from platform_api.domain.run_events import TERMINAL_STATUS, WIRE_TYPES, owner_of, terminal_status, to_wire


def test_every_class_of_the_contract_has_its_wire_type():
    assert WIRE_TYPES["RunQueued"] == WIRE_TYPES["RunStatusChanged"] == "run.status.changed"
    assert to_wire("NodeStreamDelta", {})[0] == "node.stream.delta"
    assert to_wire("NodeTimedOut", {})[0] == "node.timed_out"
    assert WIRE_TYPES["RunCancelRequested"] == "run.status.changed"
    assert len(WIRE_TYPES) == 18 and "heartbeat" not in WIRE_TYPES.values()


def test_payload_keys_become_camel_case_but_the_lensers_own_keys_inside_stay():
    wire, payload = to_wire(
        "NodeCompleted", {"node_id": "a", "spent_credits": 7, "credits": 3, "output": {"my_key": 1}}
    )
    assert wire == "node.completed"
    assert payload == {"nodeId": "a", "spentCredits": 7, "credits": 3, "output": {"my_key": 1}}


def test_terminal_events_end_in_the_seed_statuses():
    assert {t: terminal_status(t) for t in TERMINAL_STATUS} == {
        "RunCompleted": "succeeded",
        "RunFailed": "failed",
        "RunCancelled": "canceled",
        "RunTimedOut": "timed_out",
    }
    assert terminal_status("NodeFailed") is None and terminal_status("RunStarted") is None


def test_the_owner_is_the_lenser_of_run_queued():
    owner = uuid4()
    assert owner_of("RunQueued", {"lenser_id": str(owner)}) == str(owner)
    assert owner_of("LensCreated", {"lenser_id": str(owner)}) is None


def _event(version: int) -> RecordedEvent:
    return RecordedEvent(version, 1, "run-x", version, uuid4(), "NodeLog", {}, {}, datetime.now(UTC))


def test_a_client_further_behind_than_its_buffer_is_told_to_leave_and_holds_nothing():
    subscriber = Subscriber("run-x", limit=3, gone=lambda: False)
    for version in (1, 2, 3):
        subscriber.offer(_event(version))
    assert [e.version for e in subscriber.pending] == [1, 2, 3] and not subscriber.closed
    subscriber.offer(_event(4))
    assert subscriber.closed and subscriber.fell_behind and not subscriber.pending
    assert subscriber.ready.is_set()  # its stream wakes up to end
