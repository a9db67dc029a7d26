"""What a run executes, fixed when it is queued, and the pure rules of scheduling it. No I/O.

A ``RunPlan`` is the lens versions and the edges a run was queued with, copied into its first
event (``RunQueued``): a new lens or workflow version never changes a run already queued, and a
run worker needs nothing but the run's stream. A lens run is a plan of one node, ``lens``.

Rules (each a pure function, unit-tested):

- ``render``: a template's ``{{name}}`` placeholders filled from the node's parameters
  (``params`` over the node's ``paramOverrides`` over the parameter's default); a required one
  missing is refused naming every missing name. Objects render as JSON, the rest as text.
- ``merge``: what an edge delivers into its ``targetParam`` when several edges feed it, by the
  edge's ``mergeStrategy``: ``last_write_wins`` (the last edge, in the workflow's edge order,
  whose source delivered), ``concat`` (texts joined by a blank line), ``array`` (a list, in edge
  order), ``json_object`` (an object keyed by source node id).
- ``condition_holds``: the small condition language of an edge (below). Never ``eval``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from uuid import UUID

from platform_api.domain.definitions import Edge, LensDefinition, WorkflowDefinition
from platform_api.domain.errors import InvalidDefinition, problem
from platform_api.domain.parameters import PLACEHOLDER, is_of_type


@dataclass(frozen=True)
class PlanNode:
    id: str
    lens_id: str
    lens_version: int
    lens: LensDefinition
    model_id: str
    param_overrides: dict[str, Any]


@dataclass(frozen=True)
class PlanEdge:
    """An edge of a run's plan: a workflow's edge with its ends as the plan names its nodes (a
    sub-workflow's nodes are ``<sub-workflow node id>/<node id>``, so no length limit here)."""

    source: str
    target: str
    target_param: str
    source_output_key: str = "output"
    merge_strategy: str = "last_write_wins"
    condition: str | None = None

    @classmethod
    def of(cls, edge: Edge | Mapping[str, Any]) -> PlanEdge:
        data = edge.model_dump() if isinstance(edge, Edge) else edge
        return cls(
            data["source"],
            data["target"],
            data["target_param"],
            data.get("source_output_key", "output"),
            data.get("merge_strategy", "last_write_wins"),
            data.get("condition"),
        )

    def data(self) -> dict[str, Any]:
        return asdict(self)


def plan_node_data(node: PlanNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "lens_id": node.lens_id,
        "lens_version": node.lens_version,
        "lens": node.lens.model_dump(mode="json"),
        "model_id": node.model_id,
        "param_overrides": node.param_overrides,
    }


def plan_node_of(data: dict[str, Any]) -> PlanNode:
    return PlanNode(
        data["id"],
        data["lens_id"],
        data["lens_version"],
        LensDefinition.model_validate(data["lens"]),
        data["model_id"],
        dict(data.get("param_overrides") or {}),
    )


# --- sub-workflows -------------------------------------------------------------------------------

LensVersions = Mapping[tuple[UUID, int], LensDefinition]
WorkflowVersions = Mapping[tuple[UUID, int], WorkflowDefinition]


def flatten(
    workflow: WorkflowDefinition,
    lenses: LensVersions,
    workflows: WorkflowVersions,
    *,
    prefix: str = "",
    model_id: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[PlanNode], list[PlanEdge]]:
    """A workflow version as a plan of lens nodes only: each sub-workflow node ``s`` becomes its
    workflow's nodes, named ``s/<id>`` (recursively). The sub-workflow node's ``config`` applies
    to its nodes beneath their own: its ``modelId`` replaces their lenses' default models, its
    ``paramOverrides`` sit under theirs. An edge into ``s`` feeds its ``targetParam`` to each of
    the sub-workflow's root nodes (its entry points: its other nodes wait for them, and read what
    its own edges deliver); an edge out of ``s`` leaves from each of the sub-workflow's sinks
    (with several sinks, their outputs merge by the edge's strategy).
    ``lenses`` and ``workflows``: every pinned version the tree names."""
    nodes: list[PlanNode] = []
    edges: list[PlanEdge] = []
    roots: dict[str, list[str]] = {}
    sinks: dict[str, list[str]] = {}
    outer = dict(overrides or {})
    for node in workflow.nodes:
        node_id = prefix + node.id
        own = {**outer, **(node.config.param_overrides or {})}
        if node.lens_id is not None:
            lens = lenses[(node.lens_id, node.lens_version or 0)]
            model = node.config.model_id or model_id or lens.model_id
            nodes.append(PlanNode(node_id, str(node.lens_id), node.lens_version or 0, lens, model, own))
            continue
        sub = workflows[(node.workflow_id, node.workflow_version or 0)]  # type: ignore[index]
        inner_nodes, inner_edges = flatten(
            sub,
            lenses,
            workflows,
            prefix=f"{node_id}/",
            model_id=node.config.model_id or model_id,
            overrides=own,
        )
        nodes.extend(inner_nodes)
        edges.extend(inner_edges)
        roots[node_id] = [n.id for n in inner_nodes if not any(e.target == n.id for e in inner_edges)]
        sinks[node_id] = [n.id for n in inner_nodes if not any(e.source == n.id for e in inner_edges)]
    for edge in workflow.edges:
        source, target = prefix + edge.source, prefix + edge.target
        sources = sinks.get(source, [source])
        targets = roots.get(target, [target])
        plan_edge = PlanEdge.of(edge)
        edges.extend(replace(plan_edge, source=s, target=t) for s in sources for t in targets)
    return nodes, edges


# --- templates -----------------------------------------------------------------------------------


def resolve_params(lens: LensDefinition, given: dict[str, Any]) -> dict[str, Any]:
    """The lens's parameters as the template sees them: given values over defaults. Raises
    ``InvalidDefinition`` naming each required parameter with no value (``params.<name>``)."""
    values: dict[str, Any] = {}
    missing = []
    for parameter in lens.parameters:
        if parameter.name in given and given[parameter.name] is not None:
            values[parameter.name] = given[parameter.name]
        elif parameter.default is not None:
            values[parameter.name] = parameter.default
        elif parameter.required:
            missing.append(parameter.name)
    if missing:
        raise InvalidDefinition(
            [problem(f"params.{name}", f"required parameter '{name}' is missing") for name in missing]
        )
    return values


def render(template: str, values: dict[str, Any]) -> str:
    """``{{name}}`` replaced by its value; a name with no value renders empty (an optional one)."""

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1).strip())
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if is_of_type(value, "boolean"):
            return "true" if value else "false"
        return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)

    return PLACEHOLDER.sub(fill, template)


# --- edges ---------------------------------------------------------------------------------------


def merge(strategy: str, deliveries: list[tuple[str, Any]]) -> Any:
    """``deliveries``: ``(source node id, value)`` in edge order, for one target parameter."""
    values = [value for _, value in deliveries]
    if strategy == "last_write_wins":
        return values[-1]
    if strategy == "concat":
        return "\n\n".join(v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in values)
    if strategy == "array":
        return values
    if strategy == "json_object":
        return {source: value for source, value in deliveries}
    raise ValueError(f"unknown merge strategy {strategy!r}")


def edge_inputs(edges: list[PlanEdge], outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A node's inputs from its incoming ``edges`` whose source delivered (``outputs``: node id to
    its output keys) and whose condition holds, merged per target parameter. The strategy of a
    parameter is its last delivering edge's (edges feeding one parameter should agree)."""
    by_param: dict[str, list[tuple[str, Any]]] = {}
    strategy: dict[str, str] = {}
    for edge in edges:
        output = outputs.get(edge.source)
        if output is None or not condition_holds(edge.condition, output.get(edge.source_output_key)):
            continue
        by_param.setdefault(edge.target_param, []).append((edge.source, output.get(edge.source_output_key)))
        strategy[edge.target_param] = edge.merge_strategy
    return {param: merge(strategy[param], deliveries) for param, deliveries in by_param.items()}


# --- conditions ----------------------------------------------------------------------------------

_CONDITION = re.compile(
    r"""^\s*(?:\{output\}|output)\s*
        (?P<op>==|!=|contains|not\s+contains|startswith|endswith|matches)\s*
        (?P<value>"(?:[^"\\]|\\.)*")\s*$""",
    re.VERBOSE,
)
_EMPTY = re.compile(r"^\s*(?:\{output\}|output)\s+is\s+(?P<neg>not\s+)?empty\s*$")


def check_condition(condition: str) -> None:
    """Raise ``ValueError`` when ``condition`` is not of the language."""
    if not (_CONDITION.match(condition) or _EMPTY.match(condition)):
        raise ValueError(f"not a condition: {condition!r}")


def condition_holds(condition: str | None, output: Any) -> bool:
    """The edge condition language, applied to the source's output (as text; JSON for objects):

    - ``output == "text"`` / ``output != "text"`` (exact, after trimming surrounding whitespace);
    - ``output contains "x"`` / ``output not contains "x"`` / ``startswith`` / ``endswith``
      (case-sensitive);
    - ``output matches "regex"`` (Python ``re.search``);
    - ``output is empty`` / ``output is not empty``.

    ``{output}`` may be written for ``output``; the literal is a JSON string. No condition: true.
    A condition outside the language is false (the edge never delivers), never an error at run
    time: the catalogue keeps conditions as written."""
    if condition is None or not condition.strip():
        return True
    text = output if isinstance(output, str) else "" if output is None else json.dumps(output, sort_keys=True)
    if empty := _EMPTY.match(condition):
        return (not text.strip()) != bool(empty.group("neg"))
    found = _CONDITION.match(condition)
    if not found:
        return False
    literal = json.loads(found.group("value"))
    op = " ".join(found.group("op").split())
    return {
        "==": lambda: text.strip() == literal,
        "!=": lambda: text.strip() != literal,
        "contains": lambda: literal in text,
        "not contains": lambda: literal not in text,
        "startswith": lambda: text.startswith(literal),
        "endswith": lambda: text.endswith(literal),
        "matches": lambda: re.search(literal, text) is not None,
    }[op]()
