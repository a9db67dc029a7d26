import re

from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs


async def test_success_answer_is_enveloped_with_request_id_and_duration(client: TestClient) -> None:
    response = await client.get("/things")

    assert response.status == 200
    body = await response.json()
    assert set(body) == {"data", "meta"}
    assert body["meta"]["requestId"] == response.headers["X-Request-Id"]
    assert isinstance(body["meta"]["durationMs"], int)


async def test_incoming_request_id_is_echoed_in_header_and_meta(client: TestClient) -> None:
    response = await client.get("/things", headers={"X-Request-Id": "abc-123:retry.1"})

    assert response.headers["X-Request-Id"] == "abc-123:retry.1"
    assert (await response.json())["meta"]["requestId"] == "abc-123:retry.1"


async def test_unsafe_request_id_is_replaced_by_a_fresh_one(client: TestClient) -> None:
    response = await client.get("/things", headers={"X-Request-Id": "bad id\twith spaces" + "x" * 200})

    assert response.headers["X-Request-Id"] != "bad id"
    # The gateway's format (nginx's $request_id), so an id looks the same whoever made it.
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


async def test_uuid_datetime_and_decimal_are_written_as_strings(client: TestClient) -> None:
    body = await (await client.get("/things")).json()

    assert body["data"] == [
        {"id": "6f1c2b1e-4a3b-4c5d-8e9f-0a1b2c3d4e5f", "at": "2025-01-02T03:04:05Z", "price": "1.10"}
    ]


async def test_page_meta_is_merged_into_meta(client: TestClient) -> None:
    meta = (await (await client.get("/things")).json())["meta"]

    assert meta["limit"] == 1 and meta["offset"] == 0 and meta["total"] == 3
    assert meta["hasNextPage"] is True


async def test_unknown_route_is_404_not_found_in_the_envelope(client: TestClient) -> None:
    response = await client.get("/nowhere")

    assert response.status == 404
    body = await response.json()
    assert body["error"]["code"] == "not_found"
    assert body["meta"]["requestId"] == response.headers["X-Request-Id"]


async def test_wrong_method_is_405_in_the_envelope_with_allow_header(client: TestClient) -> None:
    response = await client.delete("/things")

    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


async def test_unexpected_exception_is_500_internal_error_without_traceback(client: TestClient) -> None:
    response = await client.get("/boom")

    assert response.status == 500
    text = await response.text()
    assert (await response.json())["error"] == {"code": "internal_error", "message": "Unhandled server error"}
    assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text


async def test_unexpected_exception_is_logged_with_its_traceback(client: TestClient) -> None:
    with capture_logs() as logs:
        await client.get("/boom", headers={"X-Request-Id": "trace-me"})

    [entry] = [entry for entry in logs if entry["event"] == "http.unhandled_error"]
    assert entry["log_level"] == "error" and entry["exc_info"] is True
    assert entry["path"] == "/boom"


async def test_a_service_s_own_error_shape_replaces_the_envelope_with_the_code_s_status(make_client) -> None:
    """``create_app(..., error_shape=...)`` (lightning-jobs' seed 002 ``{error: "..."}``): every error
    answer, the kit's own 404 and 400 included, in that shape."""
    from lf_web.keys import ERROR_SHAPE

    def shape(error) -> dict[str, object]:
        return {"error": error.message, "was": error.error.code}

    client = await make_client(setup=lambda app: app.__setitem__(ERROR_SHAPE, shape))

    missing = await client.get("/nowhere")
    invalid = await client.post("/things", json={"name": "x"})

    assert missing.status == 404
    assert await missing.json() == {"error": "No route matched the request path", "was": "not_found"}
    assert invalid.status == 400
    assert (await invalid.json())["was"] == "validation_error"
