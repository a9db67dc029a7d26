"""The Run aggregate's scheduling, decided purely: what gets queued, skipped, retried, ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from platform_api.application.runs import RUNS
from platform_api.domain.definitions import LensDefinition
from platform_api.domain.errors import InvalidDefinition, RunNotFound
from platform_api.domain.run import MAX_ATTEMPTS, Charge, Execution, Run, RunQueued
from platform_api.domain.run_plan import PlanNode, plan_node_data

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LENSER = uuid4()
LENS = LensDefinition(
    name="l",
    template="Say {{text}}",
    parameters=[{"name": "text", "type": "string", "required": True}],
    model_id="local-small",
)


def a_run(
    nodes: list[str],
    edges: list[tuple[str, str]],
    *,
    inputs: dict[str, Any] | None = None,
    budget: int | None = None,
    deadline: datetime | None = None,
    extra_edges: list[dict] | None = None,
) -> Run:
    run = Run()
    run.queue(
        RunQueued(
            run_id=uuid4(),
            lenser_id=LENSER,
            kind="workflow",
            workflow_id=uuid4(),
            version=1,
            funding_source="platform_credit",
            inputs={"text": "hi"} if inputs is None else inputs,
            nodes=[plan_node_data(PlanNode(n, str(uuid4()), 1, LENS, "local-small", {})) for n in nodes],
            edges=[{"source": s, "target": t, "target_param": "text"} for s, t in edges]
            + (extra_edges or []),
            budget_credits=budget,
            deadline_at=deadline,
            queued_at=NOW,
            request_hash="h",
            request_id=uuid4(),
        )
    )
    return run


def types(run: Run) -> list[str]:
    return [type(e).__name__ for e in run.pending()]


def queued_nodes(run: Run) -> list[str]:
    return [e.node_id for e in run.pending() if type(e).__name__ == "NodeQueued"]


def done(run: Run, node: str, output: str = "out", credits: int = 1) -> None:
    work = run.start_node(node, run.nodes[node].attempt, NOW)
    assert work is not None
    run.node_succeeded(node, work.attempt, Execution(output, credits, 3, 4, "local-small", "local"), NOW)


def test_a_diamond_queues_the_root_then_both_branches_then_the_join_and_completes():
    run = a_run(["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    assert queued_nodes(run) == ["a"]
    done(run, "a", "A")
    assert queued_nodes(run) == ["a", "b", "c"]
    assert run.nodes["b"].params == {"text": "A"}
    done(run, "b", "B")
    assert queued_nodes(run) == ["a", "b", "c"]  # d waits for c
    done(run, "c", "C")
    assert queued_nodes(run)[-1] == "d"
    assert run.nodes["d"].params == {"text": "C"}  # last_write_wins, in edge order
    done(run, "d")
    assert types(run)[-1] == "RunCompleted"
    assert run.status == "succeeded" and run.spent == 4


def test_the_first_start_records_run_started_and_the_prompt_is_rendered():
    run = a_run(["a"], [])
    work = run.start_node("a", 1, NOW)
    assert work is not None and work.prompt == "Say hi" and work.reference_id.endswith(":a:1")
    assert types(run)[-2:] == ["RunStarted", "NodeStarted"]


def test_a_repeated_start_hands_out_the_same_attempt_without_new_events():
    run = a_run(["a"], [])
    run.start_node("a", 1, NOW)
    before = len(run.pending())
    assert run.start_node("a", 1, NOW) is not None
    assert len(run.pending()) == before


def test_a_duplicate_success_report_changes_nothing():
    run = a_run(["a", "b"], [("a", "b")])
    done(run, "a")
    before = len(run.pending())
    run.node_succeeded("a", 1, Execution("x", 5, 0, 0, "m", "p"), NOW)
    assert len(run.pending()) == before and run.spent == 1


def test_a_failed_node_skips_its_dependants_transitively_and_the_run_fails():
    run = a_run(["a", "b", "c", "x"], [("a", "b"), ("b", "c")])
    run.start_node("a", 1, NOW)
    run.node_failed("a", 1, "bad_request", "no", transient=False, now=NOW)
    skipped = [(e.node_id, e.reason) for e in run.pending() if type(e).__name__ == "NodeSkipped"]
    assert skipped == [("b", "upstream_failed"), ("c", "upstream_failed")]
    assert run.status == "running"  # x still to run
    done(run, "x")
    assert types(run)[-1] == "RunFailed" and run.status == "failed"


def test_a_transient_failure_is_retried_as_a_new_attempt_until_the_limit():
    run = a_run(["a"], [])
    for attempt in range(1, MAX_ATTEMPTS):
        run.start_node("a", attempt, NOW)
        run.node_failed("a", attempt, "execution_unavailable", "down", transient=True, now=NOW)
        assert types(run)[-2:] == ["NodeRetried", "NodeQueued"]
        assert run.nodes["a"].attempt == attempt + 1
    assert run.start_node("a", 1, NOW) is None  # an old attempt's redelivery does nothing
    run.start_node("a", MAX_ATTEMPTS, NOW)
    run.node_failed("a", MAX_ATTEMPTS, "execution_unavailable", "down", transient=True, now=NOW)
    assert types(run)[-2:] == ["NodeFailed", "RunFailed"]


def test_a_false_condition_skips_the_target_and_the_run_still_completes():
    run = a_run(
        ["a", "b"],
        [],
        extra_edges=[
            {"source": "a", "target": "b", "target_param": "text", "condition": 'output contains "go"'}
        ],
    )
    done(run, "a", "stop")
    assert [(e.node_id, e.reason) for e in run.pending() if type(e).__name__ == "NodeSkipped"] == [
        ("b", "condition_false")
    ]
    assert run.status == "succeeded"


def test_spending_past_the_budget_cancels_the_run_with_budget_exceeded():
    run = a_run(["a", "c"], [("a", "c")], budget=5)
    done(run, "a", credits=6)
    cancelled = run.pending()[-1]
    assert type(cancelled).__name__ == "RunCancelled" and cancelled.reason == "budget_exceeded"
    assert run.status == "canceled" and run.spent == 6


def test_spending_past_the_budget_with_a_sibling_running_waits_for_its_charge():
    run = a_run(["a", "b", "c"], [("a", "c")], budget=5)
    run.start_node("b", 1, NOW)
    done(run, "a", credits=6)
    requested = run.pending()[-1]
    assert type(requested).__name__ == "RunCancelRequested" and requested.reason == "budget_exceeded"
    assert run.status == "running" and run.start_node("c", 1, NOW) is None
    assert run.stream_delta("b", 1, "late", NOW) is False
    run.node_stopped("b", 1, Charge(2, 10, 3), NOW, "run_stopping")
    assert types(run)[-2:] == ["NodeCancelled", "RunCancelled"]
    assert run.pending()[-2].credits == 2 and run.pending()[-1].spent_credits == 8
    assert run.status == "canceled" and run.pending()[-1].reason == "budget_exceeded"


def test_a_node_past_the_deadline_times_the_run_out():
    run = a_run(["a"], [], deadline=NOW + timedelta(seconds=10))
    run.start_node("a", 1, NOW)
    run.node_succeeded("a", 1, Execution("x", 2, 0, 0, "m", "p"), NOW + timedelta(seconds=11))
    assert types(run)[-2:] == ["NodeTimedOut", "RunTimedOut"] and run.status == "timed_out"
    assert run.spent == 2 and run.pending()[-2].credits == 2


def test_a_node_cut_at_the_deadline_reports_its_charge_and_the_last_ends_the_run():
    deadline = NOW + timedelta(seconds=10)
    run = a_run(["a", "b", "c"], [("a", "c")], deadline=deadline)
    run.start_node("a", 1, NOW)
    run.start_node("b", 1, NOW)
    later = deadline + timedelta(seconds=1)
    assert run.time_out_if_due(later, timedelta(seconds=30)) is False  # workers still report
    run.node_stopped("a", 1, Charge(4), later, "deadline")
    assert types(run)[-1] == "NodeTimedOut" and run.status == "running"
    run.node_stopped("b", 1, Charge(1), later, "deadline")
    assert types(run)[-2:] == ["NodeTimedOut", "RunTimedOut"]
    assert run.status == "timed_out" and run.spent == 5


def test_a_node_cut_at_the_deadline_by_a_worker_whose_clock_runs_ahead_times_the_run_out():
    # The worker cut its wait at the deadline on its own clock; the database's is a little behind.
    deadline = NOW + timedelta(seconds=10)
    run = a_run(["a", "b"], [("a", "b")], deadline=deadline)
    run.start_node("a", 1, NOW)
    run.node_stopped("a", 1, Charge(3), deadline - timedelta(milliseconds=20), "deadline")
    assert types(run)[-2:] == ["NodeTimedOut", "RunTimedOut"]
    assert "NodeRetried" not in types(run)
    assert run.status == "timed_out" and run.spent == 3


def test_a_node_stopped_at_its_own_timeout_is_retried_as_a_new_attempt_with_its_charge():
    run = a_run(["a"], [], deadline=NOW + timedelta(hours=1))
    run.start_node("a", 1, NOW)
    run.node_stopped("a", 1, Charge(2), NOW, "node_timeout")
    retried = run.pending()[-2]
    assert types(run)[-2:] == ["NodeRetried", "NodeQueued"]
    assert (retried.error_code, retried.credits, run.spent) == ("node_timeout", 2, 2)


def test_a_node_stopped_because_the_run_stops_is_judged_on_the_runs_own_state():
    run = a_run(["a"], [], deadline=NOW + timedelta(seconds=10))
    run.start_node("a", 1, NOW)
    run.node_stopped("a", 1, Charge(1), NOW + timedelta(seconds=11), "run_stopping")  # seen past it
    assert types(run)[-2:] == ["NodeTimedOut", "RunTimedOut"] and run.spent == 1


def test_the_sweep_ends_a_stopping_run_whose_worker_never_reports_with_credits_unknown():
    run = a_run(["a"], [])
    run.start_node("a", 1, NOW)
    run.cancel(LENSER, NOW)
    grace = timedelta(seconds=30)
    assert run.time_out_if_due(NOW + timedelta(seconds=29), grace) is False
    assert run.time_out_if_due(NOW + timedelta(seconds=30), grace) is True
    assert types(run)[-2:] == ["NodeCancelled", "RunCancelled"]
    assert run.pending()[-2].credits is None and run.status == "canceled"


def test_deltas_of_the_running_attempt_are_recorded_and_the_rest_goes_with_its_output():
    run = a_run(["a"], [])
    run.start_node("a", 1, NOW)
    assert run.stream_delta("a", 1, "hel", NOW) is True
    assert run.stream_delta("a", 2, "nope", NOW) is False  # not the current attempt
    assert run.start_node("a", 1, NOW).streamed == 3  # a redelivery knows what is recorded
    run.node_succeeded("a", 1, Execution("hello", 1, 0, 0, "m", "p"), NOW)
    deltas = [e.delta for e in run.pending() if type(e).__name__ == "NodeStreamDelta"]
    assert "".join(deltas) == "hello" and types(run)[-3:-1] == ["NodeStreamDelta", "NodeCompleted"]


def test_cancel_with_no_node_running_cancels_the_queued_nodes_and_the_run_at_once():
    run = a_run(["a"], [])
    with pytest.raises(RunNotFound):
        run.cancel(uuid4(), NOW)
    assert run.cancel(LENSER, NOW) is True
    assert types(run)[-2:] == ["NodeCancelled", "RunCancelled"] and run.status == "canceled"
    assert run.start_node("a", 1, NOW) is None and run.cancel(LENSER, NOW) is False


def test_cancel_mid_node_waits_for_the_running_node_and_later_reports_are_ignored():
    run = a_run(["a", "b"], [])
    run.start_node("a", 1, NOW)
    assert run.cancel(LENSER, NOW) is True
    assert types(run)[-2:] == ["NodeCancelled", "RunCancelRequested"]  # b was queued
    assert run.cancel(LENSER, NOW) is True and types(run)[-1] == "RunCancelRequested"  # once
    run.node_stopped("a", 1, Charge(2), NOW, "run_stopping")
    assert types(run)[-2:] == ["NodeCancelled", "RunCancelled"] and run.spent == 2
    before = len(run.pending())
    run.node_succeeded("a", 1, Execution("x", 2, 0, 0, "m", "p"), NOW)
    assert len(run.pending()) == before and run.cancel(LENSER, NOW) is False


def test_a_required_parameter_nothing_fills_is_refused_naming_node_and_parameter():
    with pytest.raises(InvalidDefinition) as refused:
        a_run(["a", "b"], [], inputs={})
    assert [p["field"] for p in refused.value.problems] == ["nodes.a.text", "nodes.b.text"]


def test_a_run_replays_from_its_events_to_the_same_state():
    run = a_run(["a", "b"], [("a", "b")])
    done(run, "a", "A")
    replayed = Run()
    for version, event in enumerate(run.pending(), start=1):
        replayed.replay_stored(version, type(event).__name__, event.model_dump(mode="json"))
    assert (
        replayed.nodes["b"].params == {"text": "A"} and replayed.spent == 1 and replayed.status == "running"
    )


def test_a_run_restored_from_its_snapshot_then_later_events_equals_the_run_replayed_whole():
    run = a_run(["a", "b", "c"], [("a", "b")])
    done(run, "a", "A")
    run.start_node("b", 1, NOW)
    run.stream_delta("b", 1, "par", NOW)
    run.start_node("c", 1, NOW)
    run.cancel(LENSER, NOW)  # b and c running: the cancel is requested
    events = [(v, type(e).__name__, e.model_dump(mode="json")) for v, e in enumerate(run.pending(), 1)]
    whole = RUNS.from_stored(None, 0, events)
    assert whole.cancel_requested is not None and whole.nodes["b"].streamed == 3

    for cut in range(1, len(events) + 1):  # a snapshot at every point of the stream
        head = RUNS.from_stored(None, 0, events[:cut])
        restored = RUNS.from_stored(head.to_snapshot(), cut, events[cut:])
        assert restored.to_snapshot() == whole.to_snapshot() and restored.version == whole.version
        assert restored.plan == whole.plan and restored.edges == whole.edges
