"""The catalogue over HTTP: lenses and workflows made, read, versioned and refused, on the real
database as the service's runtime role."""

from __future__ import annotations

from uuid import uuid4


async def test_health_answers_seed_001_s_shape_unenveloped(api):
    response = await api.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["db"] is True
    assert set(body) == {"status", "db", "uptime_s", "version", "checked_at"}


async def test_metrics_and_the_openapi_document_are_served(api):
    metrics = await api.get("/metrics")
    assert metrics.status == 200 and metrics.content_type == "text/plain"
    document = await api.get("/openapi.yaml")
    assert document.status == 200 and "/v1/lenses/{lensId}/versions" in await document.text()


def error_of(body: dict) -> tuple[str, list[str]]:
    error = body["error"]
    return error["code"], [f["field"] for f in (error.get("details") or {}).get("fields", [])]


# --- lenses ---------------------------------------------------------------------------------


async def test_a_lens_is_made_at_version_1_and_read_back_by_its_owner(platform, lenser):
    made = await platform.lens(lenser)
    assert made["version"] == 1 and made["latestVersion"] == 1 and made["published"] is False
    assert made["parameters"][1] == {"name": "words", "type": "number", "required": False, "default": 50}
    read = await platform.get(f"/v1/lenses/{made['id']}", lenser)
    assert read.status == 200
    assert (await read.json())["data"] == made


async def test_a_new_version_leaves_the_earlier_one_as_it_was(platform, lenser):
    made = await platform.lens(lenser)
    revised = await platform.post(
        f"/v1/lenses/{made['id']}/versions", platform.a_lens(template="Shorter: {{topic}}"), lenser
    )
    assert revised.status == 201
    assert (await revised.json())["data"]["version"] == 2
    latest = (await (await platform.get(f"/v1/lenses/{made['id']}", lenser)).json())["data"]
    first = (await (await platform.get(f"/v1/lenses/{made['id']}", lenser, version=1)).json())["data"]
    assert (latest["template"], latest["latestVersion"]) == ("Shorter: {{topic}}", 2)
    assert (first["template"], first["version"]) == (made["template"], 1)


async def test_the_lens_list_is_the_caller_s_own_paginated(platform, lenser, other_lenser):
    for n in range(3):
        await platform.lens(lenser, name=f"lens {n}")
    await platform.lens(other_lenser, published=True)
    response = await platform.get("/v1/lenses", lenser, limit=2)
    body = await response.json()
    assert [lens["name"] for lens in body["data"]] == ["lens 2", "lens 1"]
    assert (body["meta"]["total"], body["meta"]["hasNextPage"]) == (3, True)
    last = await (await platform.get("/v1/lenses", lenser, limit=2, offset=2)).json()
    assert [lens["name"] for lens in last["data"]] == ["lens 0"] and last["meta"]["hasNextPage"] is False


async def test_someone_else_s_lens_is_not_found_unless_published(platform, lenser, other_lenser):
    private = await platform.lens(other_lenser)
    public = await platform.lens(other_lenser, published=True)
    hidden = await platform.get(f"/v1/lenses/{private['id']}", lenser)
    assert hidden.status == 404 and error_of(await hidden.json())[0] == "lens.not_found"
    assert (await platform.get(f"/v1/lenses/{public['id']}", lenser)).status == 200


async def test_only_the_owner_makes_versions_of_a_lens(platform, lenser, other_lenser):
    public = await platform.lens(other_lenser, published=True)
    for lens_id in (public["id"], uuid4()):
        response = await platform.post(f"/v1/lenses/{lens_id}/versions", platform.a_lens(), lenser)
        assert response.status == 404 and error_of(await response.json())[0] == "lens.not_found"


async def test_a_version_that_does_not_exist_is_not_found(platform, lenser):
    made = await platform.lens(lenser)
    response = await platform.get(f"/v1/lenses/{made['id']}", lenser, version=2)
    assert response.status == 404


async def test_a_lens_whose_template_names_an_undeclared_parameter_is_refused_naming_it(platform, lenser):
    response = await platform.post("/v1/lenses", platform.a_lens(template="{{topic}} {{tone}}"), lenser)
    assert response.status == 400
    body = await response.json()
    assert error_of(body) == ("validation_error", ["template"])
    assert "tone" in body["error"]["details"]["fields"][0]["message"]


async def test_duplicate_parameters_and_a_mistyped_default_are_refused_naming_each(platform, lenser):
    parameters = [
        {"name": "topic", "type": "string", "default": 3},
        {"name": "topic", "type": "string"},
        {"name": "words", "type": "number"},
    ]
    response = await platform.post("/v1/lenses", platform.a_lens(parameters=parameters), lenser)
    assert error_of(await response.json()) == (
        "validation_error",
        ["parameters.0.default", "parameters.1.name"],
    )


async def test_a_malformed_lens_body_is_refused_naming_the_field_as_sent(platform, lenser):
    body = platform.a_lens(parameters=[{"name": "topic", "type": "date"}], extra=1)
    del body["modelId"]
    response = await platform.post("/v1/lenses", body, lenser)
    code, fields = error_of(await response.json())
    assert code == "validation_error"
    assert {"parameters.0.type", "modelId", "extra"} <= set(fields)


async def test_a_bad_path_id_or_query_is_a_validation_error(platform, lenser):
    assert (
        error_of(await (await platform.get("/v1/lenses/not-a-uuid", lenser)).json())[0] == "validation_error"
    )
    assert (await platform.get("/v1/lenses", lenser, limit=0)).status == 400


async def test_a_version_or_offset_past_what_postgresql_stores_is_a_validation_error_not_a_crash(
    platform, lenser
):
    """Found by schemathesis: such numbers used to reach the query and fail to bind (a 500)."""
    lens = await platform.lens(lenser)
    for path, query in [
        (f"/v1/lenses/{lens['id']}", {"version": 2**31}),
        ("/v1/lenses", {"offset": 2**63}),
        ("/v1/workflows", {"offset": 2**63}),
        ("/v1/runs", {"offset": 2**63}),
    ]:
        response = await platform.get(path, lenser, **query)
        assert response.status == 400, (path, await response.text())
        assert error_of(await response.json())[0] == "validation_error"
    assert (await platform.get(f"/v1/lenses/{lens['id']}", lenser, version=2**31 - 1)).status == 404


async def test_every_catalogue_route_needs_a_lenser_s_token(api):
    for method, path in [
        ("POST", "/v1/lenses"),
        ("GET", "/v1/lenses"),
        ("GET", f"/v1/lenses/{uuid4()}"),
        ("POST", f"/v1/lenses/{uuid4()}/versions"),
        ("POST", "/v1/workflows"),
        ("GET", "/v1/workflows"),
        ("GET", f"/v1/workflows/{uuid4()}"),
        ("POST", f"/v1/workflows/{uuid4()}/versions"),
    ]:
        response = await api.request(method, path, json={})
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "auth.missing_token"
    bad = await api.get("/v1/lenses", headers={"Authorization": "Bearer nope"})
    assert (await bad.json())["error"]["code"] == "auth.invalid_token"


# --- workflows ------------------------------------------------------------------------------


def diamond(lens_id: str) -> dict:
    return {
        "name": "diamond",
        "nodes": [{"id": n, "lensId": lens_id, "label": n.upper(), "config": {}} for n in "abcd"],
        "edges": [
            {"source": "a", "target": "b", "targetParam": "topic"},
            {"source": "a", "target": "c", "targetParam": "topic", "mergeStrategy": "concat"},
            {"source": "b", "target": "d", "targetParam": "topic", "mergeStrategy": "array"},
            {"source": "c", "target": "d", "targetParam": "topic", "condition": "output != ''"},
        ],
        "budgetCredits": 500,
        "deadlineSeconds": 600,
    }


async def test_a_workflow_is_made_with_its_lens_versions_pinned_and_edge_defaults_filled(platform, lenser):
    lens = await platform.lens(lenser)
    made = await platform.workflow(lenser, diamond(lens["id"]))
    assert (made["version"], made["depth"], made["budgetCredits"], made["deadlineSeconds"]) == (
        1,
        1,
        500,
        600,
    )
    assert {node["lensVersion"] for node in made["nodes"]} == {1}
    assert made["edges"][0]["sourceOutputKey"] == "output"
    assert made["edges"][0]["mergeStrategy"] == "last_write_wins"
    read = await platform.get(f"/v1/workflows/{made['id']}", lenser)
    assert (await read.json())["data"] == made


async def test_a_workflow_version_keeps_its_pins_when_the_lens_moves_on(platform, lenser):
    lens = await platform.lens(lenser)
    made = await platform.workflow(lenser, diamond(lens["id"]))
    await platform.post(f"/v1/lenses/{lens['id']}/versions", platform.a_lens(), lenser)
    revised = await platform.post(f"/v1/workflows/{made['id']}/versions", diamond(lens["id"]), lenser)
    assert revised.status == 201
    assert {n["lensVersion"] for n in (await revised.json())["data"]["nodes"]} == {2}
    first = await (await platform.get(f"/v1/workflows/{made['id']}", lenser, version=1)).json()
    assert {n["lensVersion"] for n in first["data"]["nodes"]} == {1}


async def test_a_cyclic_workflow_is_refused_naming_the_edge(platform, lenser):
    lens = await platform.lens(lenser)
    body = diamond(lens["id"])
    body["edges"].append({"source": "d", "target": "a", "targetParam": "topic"})
    response = await platform.post("/v1/workflows", body, lenser)
    assert response.status == 400
    assert error_of(await response.json()) == ("validation_error", ["edges.4"])


async def test_self_loops_dangling_edges_and_duplicate_nodes_are_refused_naming_each(platform, lenser):
    lens = await platform.lens(lenser)
    body = diamond(lens["id"])
    body["nodes"].append({"id": "a", "lensId": lens["id"]})
    body["edges"] += [
        {"source": "b", "target": "b", "targetParam": "topic"},
        {"source": "b", "target": "ghost", "targetParam": "topic"},
    ]
    response = await platform.post("/v1/workflows", body, lenser)
    assert error_of(await response.json()) == (
        "validation_error",
        ["nodes.4.id", "edges.4", "edges.5.target"],
    )


async def test_another_lenser_s_unpublished_lens_is_an_unknown_lens_and_a_published_one_usable(
    platform, lenser, other_lenser
):
    private = await platform.lens(other_lenser)
    public = await platform.lens(other_lenser, published=True)
    refused = await platform.post("/v1/workflows", diamond(private["id"]), lenser)
    code, fields = error_of(await refused.json())
    assert code == "validation_error" and fields == [f"nodes.{i}.lensId" for i in range(4)]
    assert (await platform.post("/v1/workflows", diamond(public["id"]), lenser)).status == 201
    unknown = await platform.post("/v1/workflows", diamond(str(uuid4())), lenser)
    assert unknown.status == 400


async def test_sub_workflows_nest_at_most_eight_deep(platform, lenser):
    lens = await platform.lens(lenser)
    inner = await platform.workflow(lenser, {"name": "w1", "nodes": [{"id": "n", "lensId": lens["id"]}]})
    for depth in range(2, 9):
        inner = await platform.workflow(
            lenser, {"name": f"w{depth}", "nodes": [{"id": "s", "workflowId": inner["id"]}]}
        )
        assert inner["depth"] == depth
    too_deep = await platform.post(
        "/v1/workflows", {"name": "w9", "nodes": [{"id": "s", "workflowId": inner["id"]}]}, lenser
    )
    assert error_of(await too_deep.json()) == ("validation_error", ["nodes"])


async def test_a_workflow_cannot_come_to_include_itself_through_a_sub_workflow(platform, lenser):
    lens = await platform.lens(lenser)
    outer = await platform.workflow(lenser, {"name": "outer", "nodes": [{"id": "n", "lensId": lens["id"]}]})
    middle = await platform.workflow(
        lenser, {"name": "middle", "nodes": [{"id": "s", "workflowId": outer["id"]}]}
    )
    response = await platform.post(
        f"/v1/workflows/{outer['id']}/versions",
        {"name": "outer", "nodes": [{"id": "s", "workflowId": middle["id"]}]},
        lenser,
    )
    assert error_of(await response.json()) == ("validation_error", ["nodes.0.workflowId"])


async def test_someone_else_s_workflow_is_not_found_unless_published_and_never_versioned_by_others(
    platform, lenser, other_lenser
):
    lens = await platform.lens(other_lenser, published=True)
    private = await platform.workflow(other_lenser, diamond(lens["id"]))
    public = await platform.workflow(other_lenser, {**diamond(lens["id"]), "published": True})
    hidden = await platform.get(f"/v1/workflows/{private['id']}", lenser)
    assert hidden.status == 404 and error_of(await hidden.json())[0] == "workflow.not_found"
    assert (await platform.get(f"/v1/workflows/{public['id']}", lenser)).status == 200
    for workflow_id in (public["id"], uuid4()):
        response = await platform.post(f"/v1/workflows/{workflow_id}/versions", diamond(lens["id"]), lenser)
        assert response.status == 404 and error_of(await response.json())[0] == "workflow.not_found"


async def test_the_workflow_list_is_the_caller_s_own_paginated(platform, lenser, other_lenser):
    lens = await platform.lens(lenser, published=True)
    for _ in range(2):
        await platform.workflow(lenser, diamond(lens["id"]))
    await platform.workflow(other_lenser, diamond(lens["id"]))
    body = await (await platform.get("/v1/workflows", lenser, limit=1)).json()
    assert len(body["data"]) == 1 and (body["meta"]["total"], body["meta"]["hasNextPage"]) == (2, True)


async def test_a_malformed_workflow_body_is_refused_naming_the_field(platform, lenser):
    body = {
        "name": "w",
        "nodes": [{"id": "a", "lensId": str(uuid4())}],
        "edges": [{"source": "a"}],
        "budgetCredits": "10",
    }
    code, fields = error_of(await (await platform.post("/v1/workflows", body, lenser)).json())
    assert code == "validation_error"
    assert {"edges.0.target", "edges.0.targetParam", "budgetCredits"} <= set(fields)
