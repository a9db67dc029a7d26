"""``POST /api/gemini/generate-image`` through the real execution-proxy (in process, its gemini
provider at the fake Gemini, which answers image requests in the real API's wire format): seed
002's ``{b64_json, mimeType}``, service funding, and its ``{error}`` answers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy import __main__ as proxy_main
from execution_proxy import app as proxy_app
from execution_proxy.settings import ExecutionSettings
from lf_pg import DatabaseAccess, create_pool
from lf_testing.fakes.gemini import PNG_1X1, FakeGemini
from lf_testing.waiting import eventually
from lightning_jobs.app import create_app
from lightning_jobs.settings import LightningSettings

API_KEY = "test-platform-key"
GEMINI_KEY = "test-gemini-key"


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    fake = await FakeGemini(api_key=GEMINI_KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def proxy_settings(database_url: str, amqp_url: str, gemini: FakeGemini) -> ExecutionSettings:
    settings = ExecutionSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        db_role="execution_proxy",
        db_owner_role="execution_proxy_owner",
        platform_api_key=API_KEY,
        wallet_api_url="http://127.0.0.1:9",  # never called: service funding charges nothing
        seed_catalogue=True,
        gemini_api_url=gemini.url,
        gemini_api_key=GEMINI_KEY,
    )
    await DatabaseAccess.of(settings, proxy_app.SCHEMA).migrate(proxy_app.MIGRATIONS)
    await proxy_main._seed(settings)  # the development catalogue: gemini-2.5-flash-image in it
    return settings


@pytest.fixture
async def images(settings: LightningSettings, proxy_settings: ExecutionSettings) -> AsyncIterator[TestClient]:
    async with TestServer(proxy_app.create_app(proxy_settings)) as proxy:
        url = str(proxy.make_url("")).rstrip("/")
        configured = settings.model_copy(update={"execution_proxy_url": url, "platform_api_key": API_KEY})
        async with TestClient(TestServer(create_app(configured, background=False))) as client:
            yield client


async def generate(api: TestClient, body: object):
    return await api.post("/api/gemini/generate-image", json=body)


async def test_an_image_is_geminis_inline_data_as_the_seeds_b64_json_and_mime_type(
    images, gemini, proxy_settings
):
    response = await generate(images, {"prompt": "a lighthouse at dusk"})

    assert response.status == 200, await response.text()
    image = await response.json()
    assert image == {"b64_json": base64.b64encode(PNG_1X1).decode(), "mimeType": "image/png"}
    assert base64.b64decode(image["b64_json"]) == PNG_1X1
    (call,) = gemini.requests
    assert call.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"  # GEMINI_IMAGE_MODEL
    assert call.body["contents"] == [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}]
    assert call.body["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]

    pool = await create_pool(
        proxy_settings.database_url, proxy_app.SCHEMA, role="execution_proxy", min_size=1, max_size=1
    )
    try:

        async def recorded() -> bool:  # no reference, no money: recorded just after the answer
            return await pool.fetchval("SELECT count(*) FROM executions WHERE kind = 'image'") == 1

        await eventually(recorded, timeout=5)
        row = await pool.fetchrow("SELECT * FROM executions WHERE kind = 'image' AND provider = 'gemini'")
        kept = await pool.fetchval("SELECT count(*) FROM execution_outputs")
    finally:
        await pool.close()
    assert (row["funding"], row["status"], row["credits_charged"], row["units"]) == (
        "service",
        "succeeded",
        0,
        1,
    )
    assert (row["reference_id"], kept) == (None, 0)  # no image kept for a retry nobody makes


@pytest.mark.parametrize("failure", ["refused", "error"])
async def test_gemini_making_no_image_is_a_502_in_the_seeds_error_shape(images, gemini, failure):
    if failure == "refused":
        gemini.refuse_images = True  # text alone, finishReason IMAGE_SAFETY
    else:
        gemini.fail_with(500, times=None)  # execution-proxy's retries fail too

    response = await generate(images, {"prompt": "a lighthouse at dusk"})

    assert response.status == 502
    body = await response.json()
    assert set(body) == {"error"}
    assert body["error"].startswith("Image generation failed: ")


async def test_execution_proxy_away_is_a_502_in_the_seeds_error_shape(settings):
    away = settings.model_copy(update={"execution_proxy_url": "http://127.0.0.1:9"})
    async with TestClient(TestServer(create_app(away, background=False))) as api:
        response = await generate(api, {"prompt": "a lighthouse at dusk"})

        assert response.status == 502
        assert await response.json() == {"error": "Image generation failed: execution-proxy unavailable"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": ""},
        {"prompt": "   "},
        {"prompt": 42},
        {"prompt": "x" * 4001},
        {"prompt": "a lighthouse\x1b[2J at dusk"},  # refused by execution-proxy's prompt rules
        ["a lighthouse"],
    ],
)
async def test_a_bad_body_is_a_400_in_the_seeds_error_shape_and_gemini_is_not_called(images, gemini, body):
    response = await generate(images, body)

    assert response.status == 400
    answer = await response.json()
    assert set(answer) == {"error"} and isinstance(answer["error"], str)
    assert gemini.requests == []
