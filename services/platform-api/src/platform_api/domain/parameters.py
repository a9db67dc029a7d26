"""Whether a lens's template and parameter schema fit together. Pure.

A template names parameters as ``{{name}}`` (spaces inside the braces allowed). Refused, each named:
a placeholder that is not a parameter name, a placeholder naming an undeclared parameter, two
parameters of one name, a default that is not of its parameter's type.
"""

from __future__ import annotations

import re
from typing import Any

from platform_api.domain.definitions import NAME, LensDefinition, ParameterType
from platform_api.domain.errors import InvalidDefinition, problem

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(NAME)


def placeholders(template: str) -> list[str]:
    """The names a template's ``{{...}}`` hold, in order, stripped of spaces."""
    return [inner.strip() for inner in PLACEHOLDER.findall(template)]


def is_of_type(value: Any, kind: ParameterType) -> bool:
    # bool is an int in Python: a boolean is never a number here, nor a number a boolean.
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, dict)


def check_lens(lens: LensDefinition) -> None:
    """Raise ``InvalidDefinition`` naming every problem of ``lens``; return if it has none."""
    problems = []
    declared: dict[str, int] = {}
    for index, parameter in enumerate(lens.parameters):
        if parameter.name in declared:
            problems.append(
                problem(f"parameters.{index}.name", f"duplicate parameter name '{parameter.name}'")
            )
        declared.setdefault(parameter.name, index)
        if parameter.default is not None and not is_of_type(parameter.default, parameter.type):
            problems.append(
                problem(
                    f"parameters.{index}.default",
                    f"default of '{parameter.name}' is not a {parameter.type}",
                )
            )
    reported: set[str] = set()
    for name in placeholders(lens.template):
        if name in reported:
            continue
        reported.add(name)
        if not _NAME.match(name):
            problems.append(problem("template", f"'{{{{{name}}}}}' is not a parameter name"))
        elif name not in declared:
            problems.append(problem("template", f"names undeclared parameter '{name}'"))
    if problems:
        raise InvalidDefinition(problems)
