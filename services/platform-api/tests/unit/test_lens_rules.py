"""A lens's template and parameter schema must fit together; each problem is named."""

from __future__ import annotations

import pytest

from platform_api.domain.definitions import LensDefinition
from platform_api.domain.errors import InvalidDefinition
from platform_api.domain.parameters import check_lens, is_of_type, placeholders


def lens(template: str, *parameters: dict) -> LensDefinition:
    return LensDefinition(name="l", template=template, parameters=list(parameters), model_id="m")


def problems(definition: LensDefinition) -> list[dict]:
    with pytest.raises(InvalidDefinition) as refused:
        check_lens(definition)
    return refused.value.problems


def test_placeholders_are_read_with_or_without_spaces_inside_the_braces():
    assert placeholders("{{a}} and {{ b }} and {{a}}") == ["a", "b", "a"]


def test_a_template_naming_only_declared_parameters_is_accepted():
    check_lens(lens("Hi {{name}}", {"name": "name", "type": "string"}, {"name": "unused", "type": "object"}))


def test_a_template_naming_an_undeclared_parameter_is_refused_naming_it():
    assert problems(lens("{{topic}} {{missing}}", {"name": "topic", "type": "string"})) == [
        {"field": "template", "message": "names undeclared parameter 'missing'"}
    ]


def test_a_placeholder_that_is_no_parameter_name_is_refused():
    assert problems(lens("{{not a name}}"))[0]["field"] == "template"


def test_duplicate_parameter_names_are_refused_at_the_second():
    found = problems(lens("x", {"name": "a", "type": "string"}, {"name": "a", "type": "number"}))
    assert found == [{"field": "parameters.1.name", "message": "duplicate parameter name 'a'"}]


@pytest.mark.parametrize(
    ("kind", "default"),
    [("string", 1), ("number", "1"), ("number", True), ("boolean", 0), ("object", [1])],
)
def test_a_default_of_the_wrong_type_is_refused_naming_the_parameter(kind, default):
    found = problems(lens("x", {"name": "p", "type": kind, "default": default}))
    assert found == [{"field": "parameters.0.default", "message": f"default of 'p' is not a {kind}"}]


@pytest.mark.parametrize(
    ("kind", "value"), [("string", "s"), ("number", 1), ("number", 1.5), ("boolean", False), ("object", {})]
)
def test_values_of_each_type_are_recognised(kind, value):
    assert is_of_type(value, kind)


def test_every_problem_is_named_at_once():
    found = problems(
        lens("{{x}}", {"name": "a", "type": "string", "default": 3}, {"name": "a", "type": "string"})
    )
    assert {p["field"] for p in found} == {"template", "parameters.0.default", "parameters.1.name"}
