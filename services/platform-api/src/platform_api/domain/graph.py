"""Whether a workflow is a runnable DAG of lenses (and sub-workflows) the lenser may use. Pure.

``resolve`` checks a workflow definition against what it names (``Catalogue``: the lenses and
workflows as the read models hold them, looked up in the command's transaction) and answers it with
every node's version pinned, its depth and the workflows it includes. Refused, each problem named by
the node or edge as the client sent it (``nodes.3``, ``edges.1``): duplicate node ids, a node naming
neither or both of a lens and a workflow, self-loops, edges to or from a node that does not exist,
cycles (the edge closing one, with the cycle), an unknown lens or workflow (another lenser's
unpublished one is unknown too), a version that does not exist, a ``targetParam`` or a
``paramOverrides`` key the target lens does not declare, sub-workflows nested deeper than
``MAX_DEPTH``, and a workflow that includes itself through its sub-workflows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from platform_api.domain.definitions import Edge, Node, WorkflowDefinition
from platform_api.domain.errors import InvalidDefinition, problem

MAX_DEPTH = 8
"""Levels of workflows, the outermost included: a workflow of lenses only is 1."""


@dataclass(frozen=True, slots=True)
class LensFacts:
    owner_id: UUID
    published: bool
    parameters: Mapping[int, frozenset[str]]
    """Each version's parameter names."""

    @property
    def latest(self) -> int:
        return max(self.parameters)


@dataclass(frozen=True, slots=True)
class WorkflowVersionFacts:
    depth: int
    includes: frozenset[UUID]
    """Every workflow this version includes, at any depth."""


@dataclass(frozen=True, slots=True)
class WorkflowFacts:
    owner_id: UUID
    published: bool
    versions: Mapping[int, WorkflowVersionFacts]

    @property
    def latest(self) -> int:
        return max(self.versions)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The lenses and workflows a definition names, as far as they exist."""

    lenses: Mapping[UUID, LensFacts] = field(default_factory=dict)
    workflows: Mapping[UUID, WorkflowFacts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolved:
    definition: WorkflowDefinition
    """As asked, every node's version pinned."""
    depth: int
    includes: frozenset[UUID]


def resolve(
    definition: WorkflowDefinition, *, workflow_id: UUID, caller: UUID, catalogue: Catalogue
) -> Resolved:
    problems: list[dict[str, Any]] = []
    ids = _node_ids(definition.nodes, problems)
    _check_edges(definition.edges, ids, problems)
    if not problems:
        _check_acyclic(definition.nodes, definition.edges, problems)
    nodes = [
        _pin(index, node, caller, workflow_id, catalogue, problems)
        for index, node in enumerate(definition.nodes)
    ]
    _check_parameters(nodes, definition.edges, catalogue, problems)
    depth, includes = _nesting(nodes, catalogue)
    if depth > MAX_DEPTH:
        problems.append(problem("nodes", f"sub-workflows nest {depth} levels deep; at most {MAX_DEPTH}"))
    if problems:
        raise InvalidDefinition(problems)
    return Resolved(definition.model_copy(update={"nodes": nodes}), depth, includes)


def _node_ids(nodes: list[Node], problems: list[dict[str, Any]]) -> set[str]:
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        if node.id in seen:
            problems.append(problem(f"nodes.{index}.id", f"duplicate node id '{node.id}'"))
        seen.add(node.id)
        if (node.lens_id is None) == (node.workflow_id is None):
            problems.append(problem(f"nodes.{index}", f"node '{node.id}' must name a lensId or a workflowId"))
    return seen


def _check_edges(edges: list[Edge], ids: set[str], problems: list[dict[str, Any]]) -> None:
    for index, edge in enumerate(edges):
        where = f"edges.{index}"
        if edge.source == edge.target:
            problems.append(problem(where, f"edge {_arrow(edge)} is a self-loop"))
        for end in ("source", "target"):
            if (node_id := getattr(edge, end)) not in ids:
                problems.append(problem(f"{where}.{end}", f"edge {_arrow(edge)}: no node '{node_id}'"))


def _check_acyclic(nodes: list[Node], edges: list[Edge], problems: list[dict[str, Any]]) -> None:
    """Depth-first; an edge into a node still on the path closes a cycle: name that edge."""
    outgoing: dict[str, list[tuple[int, Edge]]] = {node.id: [] for node in nodes}
    for index, edge in enumerate(edges):
        outgoing[edge.source].append((index, edge))
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node_id: str) -> bool:
        state[node_id] = "open"
        path.append(node_id)
        for index, edge in outgoing[node_id]:
            if state.get(edge.target) == "open":
                cycle = [*path[path.index(edge.target) :], edge.target]
                problems.append(
                    problem(f"edges.{index}", f"edge {_arrow(edge)} closes a cycle: {' -> '.join(cycle)}")
                )
                return True
            if edge.target not in state and visit(edge.target):
                return True
        path.pop()
        state[node_id] = "done"
        return False

    for node in nodes:
        if node.id not in state and visit(node.id):
            return  # one cycle named is enough to fix; the next shows after


def _pin(
    index: int,
    node: Node,
    caller: UUID,
    workflow_id: UUID,
    catalogue: Catalogue,
    problems: list[dict[str, Any]],
) -> Node:
    """The node with its lens's or sub-workflow's version pinned (the latest when it names none)."""
    where = f"nodes.{index}"
    if node.lens_id is not None:
        lens = catalogue.lenses.get(node.lens_id)
        if lens is None or not (lens.owner_id == caller or lens.published):
            problems.append(problem(f"{where}.lensId", f"node '{node.id}': unknown lens {node.lens_id}"))
            return node
        if node.lens_version is not None and node.lens_version not in lens.parameters:
            problems.append(
                problem(f"{where}.lensVersion", f"node '{node.id}': lens has no version {node.lens_version}")
            )
            return node
        return node.model_copy(update={"lens_version": node.lens_version or lens.latest})
    if node.workflow_id is None:
        return node  # named neither: reported by _node_ids
    if node.workflow_id == workflow_id:
        problems.append(problem(f"{where}.workflowId", f"node '{node.id}': a workflow cannot include itself"))
        return node
    sub = catalogue.workflows.get(node.workflow_id)
    if sub is None or not (sub.owner_id == caller or sub.published):
        problems.append(
            problem(f"{where}.workflowId", f"node '{node.id}': unknown workflow {node.workflow_id}")
        )
        return node
    version = node.workflow_version or sub.latest
    if version not in sub.versions:
        problems.append(
            problem(f"{where}.workflowVersion", f"node '{node.id}': workflow has no version {version}")
        )
        return node
    if workflow_id in sub.versions[version].includes:
        problems.append(
            problem(f"{where}.workflowId", f"node '{node.id}': workflow {node.workflow_id} includes this one")
        )
        return node
    return node.model_copy(update={"workflow_version": version})


def _check_parameters(
    nodes: list[Node], edges: list[Edge], catalogue: Catalogue, problems: list[dict[str, Any]]
) -> None:
    """An edge feeds, and an override sets, a parameter its target lens's pinned version declares.
    A sub-workflow's inputs are whatever its nodes read: not checked here."""
    declared: dict[str, frozenset[str]] = {}
    for index, node in enumerate(nodes):
        lens = catalogue.lenses.get(node.lens_id) if node.lens_id else None
        if lens is None or node.lens_version not in lens.parameters:
            continue
        declared[node.id] = names = lens.parameters[node.lens_version]
        for key in node.config.param_overrides or {}:
            if key not in names:
                problems.append(
                    problem(
                        f"nodes.{index}.config.paramOverrides.{key}",
                        f"node '{node.id}': lens has no parameter '{key}'",
                    )
                )
    for index, edge in enumerate(edges):
        names = declared.get(edge.target)
        if names is not None and edge.target_param not in names:
            problems.append(
                problem(
                    f"edges.{index}.targetParam",
                    f"edge {_arrow(edge)}: lens of '{edge.target}' has no parameter '{edge.target_param}'",
                )
            )


def _nesting(nodes: list[Node], catalogue: Catalogue) -> tuple[int, frozenset[UUID]]:
    depth, includes = 1, set[UUID]()
    for node in nodes:
        sub = catalogue.workflows.get(node.workflow_id) if node.workflow_id else None
        if sub is None or node.workflow_version not in sub.versions:
            continue
        version = sub.versions[node.workflow_version]
        depth = max(depth, 1 + version.depth)
        includes |= {node.workflow_id, *version.includes}
    return depth, frozenset(includes)


def _arrow(edge: Edge) -> str:
    return f"{edge.source}->{edge.target}"
