"""A workflow must be a runnable DAG of what its owner may use; each problem names its node or edge."""

from __future__ import annotations

from uuid import uuid4

import pytest

from platform_api.domain.definitions import WorkflowDefinition
from platform_api.domain.errors import InvalidDefinition
from platform_api.domain.graph import (
    MAX_DEPTH,
    Catalogue,
    LensFacts,
    WorkflowFacts,
    WorkflowVersionFacts,
    resolve,
)

OWNER, STRANGER, SELF = uuid4(), uuid4(), uuid4()
LENS, PRIVATE, PUBLIC = uuid4(), uuid4(), uuid4()
LENSES = {
    LENS: LensFacts(OWNER, False, {1: frozenset({"topic"}), 2: frozenset({"topic", "text"})}),
    PRIVATE: LensFacts(STRANGER, False, {1: frozenset({"text"})}),
    PUBLIC: LensFacts(STRANGER, True, {1: frozenset({"text"})}),
}


def node(node_id: str, lens=LENS, **extra) -> dict:
    return {"id": node_id, "lens_id": lens, **extra}


def edge(source: str, target: str, param: str = "text", **extra) -> dict:
    return {"source": source, "target": target, "target_param": param, **extra}


def workflow(nodes: list[dict], edges: list[dict] = ()) -> WorkflowDefinition:
    return WorkflowDefinition(name="w", nodes=nodes, edges=list(edges))


def check(definition: WorkflowDefinition, workflows=None):
    return resolve(definition, workflow_id=SELF, caller=OWNER, catalogue=Catalogue(LENSES, workflows or {}))


def problems(definition: WorkflowDefinition, workflows=None) -> list[dict]:
    with pytest.raises(InvalidDefinition) as refused:
        check(definition, workflows)
    return refused.value.problems


def test_a_diamond_is_accepted_with_every_lens_version_pinned_to_the_latest():
    resolved = check(
        workflow(
            [node("a"), node("b"), node("c", PUBLIC), node("d", lens_version=1)],
            [edge("a", "b"), edge("a", "c"), edge("b", "d", "topic"), edge("c", "d", "topic")],
        )
    )
    assert [n.lens_version for n in resolved.definition.nodes] == [2, 2, 1, 1]
    assert (resolved.depth, resolved.includes) == (1, frozenset())


def test_a_self_loop_is_refused_naming_the_edge():
    assert problems(workflow([node("a")], [edge("a", "a")])) == [
        {"field": "edges.0", "message": "edge a->a is a self-loop"}
    ]


def test_a_cycle_is_refused_naming_the_edge_that_closes_it_and_the_cycle():
    found = problems(
        workflow([node("a"), node("b"), node("c")], [edge("a", "b"), edge("b", "c"), edge("c", "a")])
    )
    assert found == [{"field": "edges.2", "message": "edge c->a closes a cycle: a -> b -> c -> a"}]


def test_a_dangling_edge_is_refused_naming_its_missing_end():
    found = problems(workflow([node("a")], [edge("a", "ghost")]))
    assert found == [{"field": "edges.0.target", "message": "edge a->ghost: no node 'ghost'"}]


def test_duplicate_node_ids_are_refused():
    assert problems(workflow([node("a"), node("a")]))[0]["field"] == "nodes.1.id"


def test_a_node_naming_neither_or_both_a_lens_and_a_workflow_is_refused():
    both = {"id": "x", "lens_id": LENS, "workflow_id": uuid4()}
    assert problems(workflow([{"id": "n"}]))[0]["field"] == "nodes.0"
    assert problems(workflow([both]))[0]["field"] == "nodes.0"


@pytest.mark.parametrize("lens", [uuid4(), PRIVATE], ids=["unknown", "another lenser's unpublished"])
def test_a_lens_the_owner_may_not_use_is_unknown(lens):
    found = problems(workflow([node("a", lens)]))
    assert found == [{"field": "nodes.0.lensId", "message": f"node 'a': unknown lens {lens}"}]


def test_a_lens_version_that_does_not_exist_is_refused():
    assert problems(workflow([node("a", lens_version=3)]))[0]["field"] == "nodes.0.lensVersion"


def test_an_edge_into_a_parameter_the_target_lens_does_not_declare_is_refused():
    found = problems(workflow([node("a"), node("b", lens_version=1)], [edge("a", "b", "text")]))
    assert found == [
        {"field": "edges.0.targetParam", "message": "edge a->b: lens of 'b' has no parameter 'text'"}
    ]


def test_an_override_of_an_undeclared_parameter_is_refused():
    found = problems(workflow([node("a", config={"param_overrides": {"nope": 1}})]))
    assert found[0]["field"] == "nodes.0.config.paramOverrides.nope"


def sub(depth: int, includes=frozenset(), owner=OWNER, published=False) -> WorkflowFacts:
    return WorkflowFacts(owner, published, {1: WorkflowVersionFacts(depth, frozenset(includes))})


def test_a_sub_workflow_adds_a_level_and_is_included_with_what_it_includes():
    inner, deeper = uuid4(), uuid4()
    resolved = check(workflow([{"id": "s", "workflow_id": inner}]), {inner: sub(2, {deeper})})
    assert resolved.depth == 3
    assert resolved.includes == {inner, deeper}
    assert resolved.definition.nodes[0].workflow_version == 1


def test_sub_workflows_may_nest_eight_levels_deep_but_not_nine():
    inner = uuid4()
    assert (
        check(workflow([{"id": "s", "workflow_id": inner}]), {inner: sub(MAX_DEPTH - 1)}).depth == MAX_DEPTH
    )
    found = problems(workflow([{"id": "s", "workflow_id": inner}]), {inner: sub(MAX_DEPTH)})
    assert found == [{"field": "nodes", "message": "sub-workflows nest 9 levels deep; at most 8"}]


def test_a_workflow_cannot_include_itself_directly_or_through_a_sub_workflow():
    inner = uuid4()
    assert problems(workflow([{"id": "s", "workflow_id": SELF}]))[0]["field"] == "nodes.0.workflowId"
    found = problems(workflow([{"id": "s", "workflow_id": inner}]), {inner: sub(2, {SELF})})
    assert found == [
        {"field": "nodes.0.workflowId", "message": f"node 's': workflow {inner} includes this one"}
    ]


def test_another_lenser_s_unpublished_workflow_is_unknown_and_a_published_one_usable():
    inner = uuid4()
    assert problems(workflow([{"id": "s", "workflow_id": inner}]), {inner: sub(1, owner=STRANGER)})
    assert check(
        workflow([{"id": "s", "workflow_id": inner}]), {inner: sub(1, owner=STRANGER, published=True)}
    )
