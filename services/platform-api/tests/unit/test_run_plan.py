"""The pure rules a run's nodes are executed by: templates, merge strategies, conditions."""

from __future__ import annotations

import pytest

from platform_api.domain.definitions import Edge, LensDefinition
from platform_api.domain.errors import InvalidDefinition
from platform_api.domain.run_plan import condition_holds, edge_inputs, merge, render, resolve_params


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
        Edge(source="a", target="c", target_param="text", merge_strategy="array"),
        Edge(source="b", target="c", target_param="text", merge_strategy="array"),
        Edge(source="b", target="c", target_param="gate", condition='output contains "yes"'),
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
