"""``POST /api/gemini/generate-image`` through the real execution-proxy (in process, its gemini
provider at the fake Gemini, which answers image requests in the real API's wire format): seed
002's ``{b64_json, mimeType}``, service funding, and its ``{error}`` answers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy import app as proxy_app
from lf_pg import create_pool
from lf_testing.fakes.gemini import PNG_1X1, FakeGemini
from lf_testing.services import execution_proxy, url_of
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
async def images(
    settings: LightningSettings, database_url: str, amqp_url: str, gemini: FakeGemini
) -> AsyncIterator[TestClient]:
    async with execution_proxy(
        database_url, amqp_url, platform_api_key=API_KEY, gemini_api_url=gemini.url, gemini_api_key=GEMINI_KEY
    ) as proxy:  # its development catalogue has gemini-2.5-flash-image
        configured = settings.model_copy(
            update={"execution_proxy_url": url_of(proxy), "platform_api_key": API_KEY}
        )
        async with TestClient(TestServer(create_app(configured, background=False))) as client:
            yield client


async def generate(api: TestClient, body: object):
    return await api.post("/api/gemini/generate-image", json=body)


async def test_an_image_is_geminis_inline_data_as_the_seeds_b64_json_and_mime_type(
    images, gemini, database_url
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

    pool = await create_pool(database_url, proxy_app.SCHEMA, role="execution_proxy", min_size=1, max_size=1)
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


async def test_images_take_the_client_ips_gemini_allowance_and_past_it_429_in_the_seeds_shape(
    settings, database_url, amqp_url, gemini
):
    # Ours (seed 002 sets no limit): the service's Gemini account pays for every image.
    async with execution_proxy(
        database_url, amqp_url, platform_api_key=API_KEY, gemini_api_url=gemini.url, gemini_api_key=GEMINI_KEY
    ) as proxy:
        configured = settings.model_copy(
            update={
                "execution_proxy_url": url_of(proxy),
                "platform_api_key": API_KEY,
                "gemini_limit_per_hour": 2,
            }
        )
        async with TestClient(TestServer(create_app(configured, background=False))) as api:
            answered = [await generate(api, {"prompt": f"image {n}"}) for n in range(3)]
            refusal = await answered[2].json()

    assert [r.status for r in answered] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answered] == ["1", "0", "0"]
    assert answered[2].headers["X-RateLimit-Limit"] == "2"
    assert list(refusal) == ["error"]
    assert len(gemini.requests) == 2  # the refused one never reached Gemini
