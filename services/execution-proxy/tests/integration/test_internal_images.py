"""POST /internal/executions/image: images for our own services (lightning-jobs' Gemini images),
funded as ``/internal/executions`` is; a Gemini image model through the fake Gemini's real wire
format; idempotent per ``referenceId``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from execution_proxy.domain.pricing import Metered
from execution_proxy.settings import ExecutionSettings
from lf_testing.fakes.gemini import PNG_1X1, FakeGemini
from lf_testing.waiting import eventually

GEMINI_KEY = "test-gemini-key"
IMAGE_MODEL = "gemini-2.5-flash-image"
INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    fake = await FakeGemini(api_key=GEMINI_KEY, reply="Here is your lighthouse.").start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def settings(settings: ExecutionSettings, gemini: FakeGemini) -> ExecutionSettings:
    """The suite's settings, with Gemini pointed at the fake and given the platform's key."""
    return settings.model_copy(update={"gemini_api_url": gemini.url, "gemini_api_key": GEMINI_KEY})


async def generate(api, **body: Any):
    payload = {
        "funding": "service",
        "provider": "gemini",
        "model": IMAGE_MODEL,
        "prompt": "a lighthouse at dusk",
        **body,
    }
    return await api.post("/internal/executions/image", json=payload, headers=INTERNAL)


async def test_a_service_funded_gemini_image_is_its_inline_data_and_charges_nothing(api, gemini, db):
    response = await generate(api)

    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["urls"] == [PNG_URI]
    assert (data["units"], data["provider"], data["model"]) == (1, "gemini", IMAGE_MODEL)
    assert (data["creditsCharged"], data["replayed"]) == (0, False)
    call = gemini.last
    assert call.path == f"/v1beta/models/{IMAGE_MODEL}:generateContent"
    assert call.headers["x-goog-api-key"] == GEMINI_KEY
    assert call.body == {
        "contents": [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }

    async def recorded() -> bool:
        query = "SELECT count(*) FROM executions WHERE execution_id = $1::uuid"
        return await db.fetchval(query, data["executionId"]) == 1

    await eventually(recorded, timeout=5)  # no reference: recorded once the caller has its answer
    row = await db.fetchrow("SELECT * FROM executions WHERE execution_id = $1::uuid", data["executionId"])
    assert (row["kind"], row["funding"], row["status"], row["units"], row["credits_charged"]) == (
        "image",
        "service",
        "succeeded",
        1,
        0,
    )
    assert row["payer_id"] is None and row["reservation_id"] is None


async def test_a_size_is_sent_as_geminis_aspect_ratio(api, gemini):
    response = await generate(api, image_size="portrait_16_9")

    assert response.status == 200, await response.text()
    assert gemini.last.body["generationConfig"]["imageConfig"] == {"aspectRatio": "9:16"}


async def test_a_retried_reference_is_answered_from_the_record_without_calling_gemini(api, gemini, db):
    reference = f"lightning-image:{uuid4()}"

    first = (await (await generate(api, referenceId=reference)).json())["data"]
    again = await generate(api, referenceId=reference)

    assert again.status == 200
    replayed = (await again.json())["data"]
    assert replayed == {**first, "replayed": True}
    assert len(gemini.requests) == 1
    count = await db.fetchval("SELECT count(*) FROM executions WHERE reference_id = $1", reference)
    assert count == 1


async def test_another_reference_is_another_execution(api, gemini):
    one = (await (await generate(api, referenceId="a")).json())["data"]
    other = (await (await generate(api, referenceId="b")).json())["data"]

    assert one["executionId"] != other["executionId"]
    assert len(gemini.requests) == 2


@pytest.mark.parametrize("failure", ["refused", "error"])
async def test_gemini_failing_is_a_502_provider_failed_and_so_is_its_retry(api, gemini, db, failure):
    if failure == "refused":
        gemini.refuse_images = True  # text alone, finishReason IMAGE_SAFETY: not retried
    else:
        gemini.fail_with(500, times=None)  # the retries fail too
    reference = f"lightning-image:{uuid4()}"

    response = await generate(api, referenceId=reference)

    assert response.status == 502
    error = (await response.json())["error"]
    assert error["code"] == "execute.provider_failed"
    status = await db.fetchval("SELECT status FROM executions WHERE reference_id = $1", reference)
    assert status == "failed"
    asked = len(gemini.requests)
    gemini.recover()
    gemini.refuse_images = False
    retried = await generate(api, referenceId=reference)
    assert retried.status == 502  # the reference's execution failed: a new request needs a new one
    assert len(gemini.requests) == asked


async def test_platform_credit_funding_charges_the_lenser_per_image(
    driver, api, lenser, gemini, catalogue, settings
):
    await driver.fund(lenser, 1000)

    response = await generate(api, funding="platform_credit", lenserId=str(lenser))

    assert response.status == 200, await response.text()
    quote = (await catalogue.current()).quote(IMAGE_MODEL, catalogue.clock(), settings.credits_per_usd)
    price = quote.cost(Metered(units=1))[1]
    assert (await response.json())["data"]["creditsCharged"] == price > 0
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (1000 - price, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"funding": "user_byok_cloud"}, "funding"),
        ({"funding": "platform_credit"}, "body"),  # names no lenser
        ({"funding": "sponsored"}, "body"),  # names no sponsor
        ({"image_size": "square_4k"}, "image_size"),
        ({"referenceId": ""}, "referenceId"),
    ],
)
async def test_a_bad_body_is_a_400_validation_error_in_the_envelope(api, gemini, body, field):
    response = await generate(api, **body)

    assert response.status == 400
    document = await response.json()
    assert document["error"]["code"] == "validation_error"
    assert [f["field"] for f in document["error"]["details"]["fields"]] == [field]
    assert "requestId" in document["meta"]
    assert gemini.requests == []


async def test_a_token_model_is_not_found_on_the_image_route(api, gemini):
    response = await generate(api, model="gemini-2.5-flash")

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "execute.model_not_found"
    assert gemini.requests == []


async def test_without_the_platform_key_it_is_unauthorized(api, gemini):
    response = await api.post("/internal/executions/image", json={"funding": "service"})

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "auth.unauthorized"
