"""POST /execute/image: fal FLUX images on credits, reserved for every image asked for and charged
for every image returned; refusals before any reservation; its own rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy.app import create_app
from execution_proxy.domain.pricing import Metered
from execution_proxy.settings import ExecutionSettings
from lf_testing.fakes.fal import FakeFal
from lf_testing.tokens import bearer

FAL_KEY = "test-fal-key"
SCHNELL = "fal-ai/flux/schnell"
DEV = "fal-ai/flux/dev"


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = await FakeFal(api_key=FAL_KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def settings(settings: ExecutionSettings, fal: FakeFal) -> ExecutionSettings:
    """The suite's settings, with fal pointed at the fake and given the platform's key."""
    return settings.model_copy(update={"fal_api_url": fal.url, "fal_api_key": FAL_KEY})


async def generate(api: TestClient, lenser, **body: Any):
    payload = {
        "provider": "fal",
        "model": SCHNELL,
        "prompt": "a lighthouse at dusk",
        "num_images": 2,
        "image_size": "square_hd",
        **body,
    }
    return await api.post("/execute/image", json=payload, headers=bearer(lenser))


async def credits_for(catalogue, settings: ExecutionSettings, model: str, images: int) -> int:
    """What ``images`` images of ``model`` cost by the catalogue's quote now."""
    quote = (await catalogue.current()).quote(model, catalogue.clock(), settings.credits_per_usd)
    return quote.cost(Metered(units=images))[1]


async def test_two_images_are_charged_at_the_models_price_per_image(
    driver, api, lenser, fal, catalogue, settings, db
):
    await driver.fund(lenser, 1000)

    response = await generate(api, lenser)

    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    price = await credits_for(catalogue, settings, SCHNELL, 2)
    assert len(data["urls"]) == 2
    assert all(url.startswith("https://") for url in data["urls"])
    assert data["units"] == 2
    assert (data["provider"], data["model"]) == ("fal", SCHNELL)
    assert data["creditsCharged"] == price
    call = fal.last
    assert call.path == f"/{SCHNELL}"
    assert call.headers["Authorization"] == f"Key {FAL_KEY}"
    assert call.body == {
        "prompt": "a lighthouse at dusk",
        "num_images": 2,
        "image_size": "square_hd",
        "sync_mode": True,
    }
    balance = await driver.settled(lenser)
    assert balance["balance"] == 1000 - price
    assert balance["reserved"] == 0
    row = await db.fetchrow("SELECT * FROM executions WHERE execution_id = $1::uuid", data["executionId"])
    assert (row["kind"], row["status"], row["units"], row["credits_charged"]) == (
        "image",
        "succeeded",
        2,
        price,
    )
    assert await driver.trial_balance() == 0


async def test_fewer_images_returned_than_asked_are_charged_for_those_returned(
    driver, api, lenser, fal, catalogue, settings, db
):
    await driver.fund(lenser, 1000)
    fal.images_at_most = 2

    response = await generate(api, lenser, model=DEV, num_images=4)

    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    returned = await credits_for(catalogue, settings, DEV, 2)
    asked = await credits_for(catalogue, settings, DEV, 4)
    assert returned < asked  # the dev model's price tells two images from four
    assert (len(data["urls"]), data["units"], data["creditsCharged"]) == (2, 2, returned)
    reserved = await db.fetchval(
        "SELECT reserved_credits FROM executions WHERE execution_id = $1::uuid", data["executionId"]
    )
    assert reserved == asked  # the most it could cost: every image asked for
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (1000 - returned, 0)


async def test_a_fal_failure_is_a_502_and_nothing_is_charged(driver, api, lenser, fal, db, wallet_db):
    await driver.fund(lenser, 1000)
    fal.fail_with(500, times=None)  # the retries fail too

    response = await generate(api, lenser)

    assert response.status == 502
    assert (await response.json())["error"]["code"] == "execute.provider_failed"
    assert await db.fetchval("SELECT status FROM executions WHERE lenser_id = $1", lenser) == "failed"
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (1000, 0)
    statuses = await wallet_db.fetch("SELECT status FROM reservations WHERE lenser_id = $1", lenser)
    assert [row["status"] for row in statuses] == ["released"]  # reserved, then released by the event


async def test_fal_without_a_platform_key_is_an_unsupported_provider(settings, catalogue, lenser, wallet_db):
    unconfigured = settings.model_copy(update={"fal_api_key": ""})
    async with TestClient(TestServer(create_app(unconfigured, background=False))) as api:
        response = await generate(api, lenser)
        error = (await response.json())["error"]

    assert response.status == 400
    assert error["code"] == "execute.unsupported_provider"
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations WHERE lenser_id = $1", lenser) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "openai", "model": "gpt-4o-mini"},  # a token model, with its own provider
        {"model": "gpt-4o-mini"},  # a token model named under fal
        {"model": "fal-ai/flux/no-such-model"},
    ],
)
async def test_a_model_that_is_not_an_image_model_is_not_found(api, lenser, fal, wallet_db, body):
    response = await generate(api, lenser, **body)

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "execute.model_not_found"
    assert fal.requests == []
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations WHERE lenser_id = $1", lenser) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image_size": "square_4k"}, "image_size"),
        ({"num_images": 5}, "num_images"),
        ({"num_images": 0}, "num_images"),
        ({"num_images": "2"}, "num_images"),  # a number, not a string that looks like one
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 4001}, "prompt"),
        ({"prompt": "a lighthouse\x1b[2J at dusk"}, "prompt"),
    ],
)
async def test_a_bad_body_is_a_validation_error_naming_the_field(api, lenser, fal, body, field):
    response = await generate(api, lenser, **body)

    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert fal.requests == []


async def test_a_prompt_of_4000_characters_is_accepted(driver, api, lenser, fal):
    await driver.fund(lenser, 1000)

    response = await generate(api, lenser, prompt="x" * 4000, num_images=1)

    assert response.status == 200, await response.text()


async def test_the_31st_image_request_in_a_minute_is_rate_limited(driver, api, lenser, fal):
    await driver.fund(lenser, 1000)
    for _ in range(30):
        response = await generate(api, lenser, num_images=1)
        assert response.status == 200, await response.text()

    response = await generate(api, lenser, num_images=1)

    assert response.status == 429
    assert (await response.json())["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert len(fal.requests) == 30
    # The text routes keep their own allowance.
    assert (await driver.execute(lenser)).status == 200
