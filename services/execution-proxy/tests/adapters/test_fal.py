"""The fal adapter: images from the synchronous endpoint, its refusals, and its own timeout."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from execution_proxy.adapters.providers import build_providers
from execution_proxy.adapters.providers.base import (
    ImageProvider,
    ImageRequest,
    ProviderError,
    ProviderTimeout,
)
from lf_testing.fakes.fal import FakeFal

KEY = "test-fal-key"
FLUX = ImageRequest(
    model="fal-ai/flux/dev", prompt="a lighthouse at dusk", num_images=2, image_size="square_hd"
)


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    fake = await FakeFal(api_key=KEY).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def images(fal: FakeFal, http, settings_for) -> ImageProvider:
    return build_providers(settings_for(fal_api_url=fal.url, fal_timeout_seconds=0.3), http).images["fal"]


async def test_images_are_generated_synchronously_with_the_key(fal, images):
    result = await images.generate(FLUX, KEY)

    assert len(result.urls) == 2
    assert all(url.startswith("https://") for url in result.urls)
    call = fal.last
    assert call.path == "/fal-ai/flux/dev"
    assert call.headers["Authorization"] == f"Key {KEY}"
    assert call.body == {
        "prompt": "a lighthouse at dusk",
        "num_images": 2,
        "image_size": "square_hd",
        "sync_mode": True,
    }


async def test_a_refusal_is_a_provider_error_with_its_status_not_retried(fal, images):
    with pytest.raises(ProviderError) as refused:
        await images.generate(FLUX, "wrong-key")
    with pytest.raises(ProviderError) as invalid:
        await images.generate(ImageRequest("fal-ai/flux/dev", "x", num_images=9, image_size="square"), KEY)

    assert (refused.value.status, refused.value.transient) == (401, False)
    assert invalid.value.status == 422
    assert "between 1 and 4" in str(invalid.value)
    assert len(fal.requests) == 2


async def test_a_server_error_is_retried(fal, images):
    fal.fail_with(502, retry_after=0)

    result = await images.generate(FLUX, KEY)

    assert len(result.urls) == 2
    assert len(fal.requests) == 2


async def test_no_answer_within_the_fal_timeout_is_a_timeout_not_retried(fal, images):
    fal.hang()

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await images.generate(FLUX, KEY)

    assert time.monotonic() - started < 1.5
    assert len(fal.requests) == 1


async def test_no_size_leaves_it_to_fals_default(fal, images):
    unsized = ImageRequest(model="fal-ai/flux/dev", prompt="a lighthouse", num_images=1, image_size=None)

    await images.generate(unsized, KEY)

    assert "image_size" not in fal.last.body
