"""The pure rules a run's nodes are executed by: templates, merge strategies, conditions."""

from __future__ import annotations

from uuid import uuid4

import pytest

from platform_api.domain.definitions import LensDefinition, WorkflowDefinition
from platform_api.domain.errors import InvalidDefinition
from platform_api.domain.run_plan import (
    PlanEdge,
    condition_holds,
    edge_inputs,
    flatten,
    merge,
    render,
    resolve_params,
)


def lens(**parameters: dict) -> LensDefinition:
    return LensDefinition(
        name="l",
        template="t",
        parameters=[{"name": name, **spec} for name, spec in parameters.items()],
        model_id="m",
    )


def test_render_fills_placeholders_with_or_without_spaces_and_objects_as_json():
    text = render(
        "A {{a}} B {{ b }} C {{c}} D {{d}} E {{missing}}.", {"a": "x", "b": 2, "c": {"k": 1}, "d": True}
    )
    assert text == 'A x B 2 C {"k": 1} D true E .'


def test_resolve_params_takes_defaults_and_names_every_missing_required_one():
    definition = lens(
        topic={"type": "string", "required": True},
        words={"type": "number", "default": 50},
        tone={"type": "string", "required": True},
    )
    with pytest.raises(InvalidDefinition) as refused:
        resolve_params(definition, {})
    assert [p["field"] for p in refused.value.problems] == ["params.topic", "params.tone"]
    assert resolve_params(definition, {"topic": "t", "tone": "dry"}) == {
        "topic": "t",
        "tone": "dry",
        "words": 50,
    }


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("last_write_wins", "second"),
        ("concat", "first\n\nsecond"),
        ("array", ["first", "second"]),
        ("json_object", {"a": "first", "b": "second"}),
    ],
)
def test_each_merge_strategy(strategy: str, expected: object):
    assert merge(strategy, [("a", "first"), ("b", "second")]) == expected


def test_edge_inputs_merge_per_target_param_and_skip_edges_whose_condition_fails():
    edges = [
        PlanEdge(source="a", target="c", target_param="text", merge_strategy="array"),
        PlanEdge(source="b", target="c", target_param="text", merge_strategy="array"),
        PlanEdge(source="b", target="c", target_param="gate", condition='output contains "yes"'),
    ]
    inputs = edge_inputs(edges, {"a": {"output": "A"}, "b": {"output": "no"}})
    assert inputs == {"text": ["A", "no"]}


@pytest.mark.parametrize(
    ("condition", "output", "holds"),
    [
        (None, "anything", True),
        ('output contains "cat"', "a cat", True),
        ('{output} contains "cat"', "a dog", False),
        ('output not contains "cat"', "a dog", True),
        ('output == "yes"', "  yes\n", True),
        ('output != "yes"', "no", True),
        ('output startswith "ab"', "abc", True),
        ('output endswith "bc"', "abc", True),
        ('output matches "^[0-9]+$"', "123", True),
        ("output is empty", "  ", True),
        ("output is not empty", "x", True),
        ("__import__('os').system('x')", "x", False),
    ],
)
def test_conditions(condition: str | None, output: str, holds: bool):
    assert condition_holds(condition, output) is holds


def test_flatten_replaces_a_sub_workflow_node_by_its_nodes_wired_to_its_roots_and_sinks():
    say = lens(text={"type": "string"})
    other = lens(topic={"type": "string"})
    say_id, other_id, sub_id = uuid4(), uuid4(), uuid4()
    sub = WorkflowDefinition(
        name="sub",
        nodes=[
            {"id": "p", "lens_id": say_id, "lens_version": 1},
            {"id": "q", "lens_id": other_id, "lens_version": 1, "config": {"model_id": "own"}},
            {"id": "r", "lens_id": say_id, "lens_version": 1},
        ],
        edges=[{"source": "p", "target": "q", "target_param": "topic"}],
    )
    outer = WorkflowDefinition(
        name="outer",
        nodes=[
            {"id": "x", "lens_id": say_id, "lens_version": 1},
            {
                "id": "s",
                "workflow_id": sub_id,
                "workflow_version": 2,
                "config": {"model_id": "big", "param_overrides": {"text": "o"}},
            },
            {"id": "y", "lens_id": say_id, "lens_version": 1},
        ],
        edges=[
            {"source": "x", "target": "s", "target_param": "topic"},
            {"source": "s", "target": "y", "target_param": "text", "merge_strategy": "array"},
        ],
    )
    nodes, edges = flatten(outer, {(say_id, 1): say, (other_id, 1): other}, {(sub_id, 2): sub})
    by_id = {n.id: n for n in nodes}
    assert list(by_id) == ["x", "s/p", "s/q", "s/r", "y"]
    assert (by_id["s/p"].model_id, by_id["s/q"].model_id, by_id["x"].model_id) == ("big", "own", "m")
    assert by_id["s/p"].param_overrides == {"text": "o"}
    assert {(e.source, e.target, e.target_param) for e in edges} == {
        ("s/p", "s/q", "topic"),  # inside
        ("x", "s/p", "topic"),  # into its roots
        ("x", "s/r", "topic"),
        ("s/q", "y", "text"),  # out of its sinks
        ("s/r", "y", "text"),
    }
