"""The OpenAI adapter's own wire format: the URL under /v1, usage on request, cached tokens apart."""

from __future__ import annotations

from execution_proxy.adapters.providers.base import ProviderUsage
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.fakes.provider import FakeUsage


async def test_a_stream_asks_for_usage_and_sends_the_bearer_key(wire, ask):
    wired = await wire("openai", FakeOpenAI(api_key="test-provider-key"))

    await wired.stream(ask("Hi", system="Be brief.", max_tokens=20))

    call = wired.fake.last
    assert wired.fake.url.endswith("/v1")
    assert call.path == "/v1/chat/completions"
    assert call.headers["Authorization"] == "Bearer test-provider-key"
    assert call.body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 20,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_a_buffered_call_sends_the_temperature_only_when_given(wire, ask):
    wired = await wire("openai", FakeOpenAI())

    await wired.complete(ask(temperature=0.2))
    await wired.complete(ask())

    assert wired.fake.requests[0].body["temperature"] == 0.2
    assert "temperature" not in wired.fake.requests[1].body
    assert "stream" not in wired.fake.requests[1].body


async def test_cached_prompt_tokens_are_moved_out_of_the_plain_input(wire):
    wired = await wire("openai", FakeOpenAI(usage=FakeUsage(input_tokens=30, cache_read_input_tokens=20)))

    streamed = await wired.stream()
    completion = await wired.complete()

    expected = ProviderUsage(
        input_tokens=30, output_tokens=len(wired.fake.deltas), cache_read_input_tokens=20
    )
    assert streamed.usage == expected
    assert completion.usage == expected


async def test_usage_comes_once_in_the_last_chunk(wire):
    wired = await wire("openai", FakeOpenAI(usage=FakeUsage(output_tokens=99)))

    streamed = await wired.stream()

    assert streamed.reports == [ProviderUsage(input_tokens=12, output_tokens=99)]
