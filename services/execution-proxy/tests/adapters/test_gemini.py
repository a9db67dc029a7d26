"""The Gemini adapter's own wire format: the model in the path, the key in a header, roles and
system instruction, thoughts charged as output, and only the final chunk's output count."""

from __future__ import annotations

import base64

import pytest

from execution_proxy.adapters.providers import build_providers
from execution_proxy.adapters.providers.base import (
    ChatMessage,
    ChatRequest,
    ImageRequest,
    ProviderError,
    ProviderUsage,
)
from execution_proxy.adapters.providers.gemini import candidate_images, refuse_if_blocked
from lf_testing.fakes.gemini import PNG_1X1, FakeGemini
from lf_testing.fakes.provider import FakeUsage


async def test_a_stream_calls_stream_generate_content_as_sse_with_the_key_in_a_header(wire, ask):
    wired = await wire("gemini", FakeGemini(api_key="test-provider-key"))

    await wired.stream(ask(max_tokens=40, temperature=0.7))

    call = wired.fake.last
    assert call.path == "/v1beta/models/test-model:streamGenerateContent"
    assert call.query == {"alt": "sse"}  # the key is not in the URL
    assert call.headers["x-goog-api-key"] == "test-provider-key"
    assert call.body["generationConfig"] == {"maxOutputTokens": 40, "temperature": 0.7}


async def test_system_messages_become_the_system_instruction_and_assistant_is_model(wire):
    wired = await wire("gemini", FakeGemini())
    request = ChatRequest(
        model="gemini-2.0-flash",
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", "Hello"),
            ChatMessage("user", "Again"),
        ),
        max_tokens=10,
    )

    await wired.complete(request)

    call = wired.fake.last
    assert call.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert call.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert call.body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "Again"}]},
    ]
    assert "temperature" not in call.body["generationConfig"]


async def test_thoughts_are_charged_as_output_and_cached_tokens_apart(wire):
    usage = FakeUsage(input_tokens=40, cache_read_input_tokens=10, output_tokens=7, thoughts_tokens=5)
    wired = await wire("gemini", FakeGemini(usage=usage))

    streamed = await wired.stream()
    completion = await wired.complete()

    expected = ProviderUsage(input_tokens=40, output_tokens=12, cache_read_input_tokens=10)
    assert streamed.usage == expected
    assert completion.usage == expected


async def test_running_counts_on_earlier_chunks_are_not_the_output_the_last_chunk_is(wire):
    wired = await wire("gemini", FakeGemini(usage=FakeUsage(output_tokens=50)))

    streamed = await wired.stream()

    # Every chunk repeats usageMetadata (with a running candidatesTokenCount): the input is known
    # from the first, the output only from the chunk that finishes.
    assert [report.output_tokens for report in streamed.reports] == [None, 50]
    assert streamed.usage == ProviderUsage(input_tokens=12, output_tokens=50)


def test_a_blocked_prompt_is_a_refusal_not_a_cut_stream():
    with pytest.raises(ProviderError) as blocked:
        refuse_if_blocked(
            {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}
        )

    assert not blocked.value.transient
    assert "SAFETY" in str(blocked.value)


# --- images (a Gemini image model through generateContent) ------------------------------------


@pytest.fixture
async def gemini_images(http, settings_for):
    fake = await FakeGemini(api_key="test-provider-key").start()
    try:
        settings = settings_for(gemini_api_url=fake.url, gemini_api_key="test-provider-key")
        yield fake, build_providers(settings, http).images["gemini"]
    finally:
        await fake.stop()


IMAGE = ImageRequest(model="gemini-2.5-flash-image", prompt="a lighthouse", num_images=1, image_size=None)


async def test_an_image_is_asked_for_by_modality_and_answered_as_a_data_uri(gemini_images):
    fake, images = gemini_images

    result = await images.generate(IMAGE, "test-provider-key")

    assert result.urls == ("data:image/png;base64," + base64.b64encode(PNG_1X1).decode(),)
    call = fake.last
    assert call.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert call.headers["x-goog-api-key"] == "test-provider-key"
    assert call.body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}


async def test_an_answer_without_an_image_is_a_refusal_not_retried(gemini_images):
    fake, images = gemini_images
    fake.refuse_images = True

    with pytest.raises(ProviderError, match="IMAGE_SAFETY") as refused:
        await images.generate(IMAGE, "test-provider-key")

    assert not refused.value.transient
    assert len(fake.requests) == 1


def test_an_image_part_without_its_data_is_malformed():
    answer = {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}}]}

    with pytest.raises(ProviderError, match="malformed"):
        candidate_images(answer)
