from collections.abc import AsyncIterator

from aiohttp.test_utils import TestClient

VALID = {"name": "lamp", "price": "9.99", "owner": {"name": "ada", "age": 36}}


async def _fields(response) -> list[dict]:
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    return error["details"]["fields"]


async def test_valid_body_is_parsed_into_the_model(client: TestClient) -> None:
    response = await client.post("/things", json=VALID)

    assert response.status == 201
    assert (await response.json())["data"] == VALID


async def test_bad_json_is_a_validation_error_on_field_body(client: TestClient) -> None:
    fields = await _fields(await client.post("/things", data=b"{not json"))

    assert [field["field"] for field in fields] == ["body"]


async def test_json_that_is_not_an_object_is_a_validation_error_on_field_body(client: TestClient) -> None:
    fields = await _fields(await client.post("/things", json=[1, 2]))

    assert [field["field"] for field in fields] == ["body"]


async def test_wrong_field_types_are_reported_by_dotted_path_without_the_value(client: TestClient) -> None:
    response = await client.post(
        "/things", json={**VALID, "price": "cheap", "owner": {"name": "ada", "age": "x"}}
    )
    fields = await _fields(response)

    assert {field["field"] for field in fields} == {"price", "owner.age"}
    assert all(field["message"] for field in fields)
    assert "cheap" not in str(fields)


async def test_missing_fields_are_reported(client: TestClient) -> None:
    fields = await _fields(await client.post("/things", json={"name": "lamp"}))

    assert {field["field"] for field in fields} == {"price", "owner"}


async def test_oversized_body_with_content_length_is_a_validation_error(client: TestClient) -> None:
    fields = await _fields(await client.post("/things", data=b"x" * 5000))

    assert fields == [{"field": "body", "message": "must be at most 1024 bytes"}]


async def test_oversized_chunked_body_without_content_length_is_a_validation_error(
    client: TestClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    fields = await _fields(await client.post("/things", data=chunks()))

    assert fields == [{"field": "body", "message": "must be at most 1024 bytes"}]


async def test_query_is_parsed_and_repeated_parameters_fill_list_fields(client: TestClient) -> None:
    response = await client.get("/search?limit=5&tag=a&tag=b")

    assert (await response.json())["data"] == {"limit": 5, "tag": ["a", "b"]}


async def test_list_field_given_once_in_the_query_is_a_list_of_one(client: TestClient) -> None:
    response = await client.get("/search?tag=a")

    assert (await response.json())["data"] == {"limit": 10, "tag": ["a"]}


async def test_bad_query_parameter_is_a_validation_error_naming_it(client: TestClient) -> None:
    fields = await _fields(await client.get("/search?limit=lots"))

    assert [field["field"] for field in fields] == ["limit"]
