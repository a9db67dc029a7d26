"""The Anthropic adapter's own wire format: where the system prompt goes, and where usage is."""

from __future__ import annotations

import pytest

from execution_proxy.adapters.providers.anthropic import AnthropicProvider
from execution_proxy.adapters.providers.base import ProviderError, ProviderUsage
from lf_testing.fakes.anthropic import FakeAnthropic
from lf_testing.fakes.provider import FakeUsage


async def test_the_request_carries_key_version_and_a_top_level_system(wire, ask):
    wired = await wire(
        "anthropic", FakeAnthropic(api_key="test-provider-key"), anthropic_version="2023-06-01"
    )

    await wired.stream(ask("Hi", system="Be brief.", temperature=0.5, max_tokens=33))

    call = wired.fake.last
    assert call.path == "/v1/messages"
    assert call.headers["x-api-key"] == "test-provider-key"
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert call.body == {
        "model": "test-model",
        "max_tokens": 33,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5,
        "stream": True,
    }


async def test_message_delta_output_counts_are_cumulative_so_the_last_is_assigned(wire):
    fake = FakeAnthropic(message_delta_usage=[{"output_tokens": 5}, {"output_tokens": 9}])
    wired = await wire("anthropic", fake)

    streamed = await wired.stream()

    assert [report.output_tokens for report in streamed.reports] == [None, 5, 9]
    assert streamed.usage.output_tokens == 9


async def test_the_output_count_of_message_start_is_not_taken_as_the_output(wire):
    wired = await wire("anthropic", FakeAnthropic())
    wired.fake.hang(after_deltas=1)

    items = wired.items()
    first = await anext(items)
    await items.aclose()

    assert first.usage == ProviderUsage(input_tokens=12, output_tokens=None)  # message_start said 1


async def test_cache_writes_and_reads_are_reported_apart_from_plain_input(wire):
    usage = FakeUsage(input_tokens=10, cache_creation_input_tokens=4, cache_read_input_tokens=6)
    wired = await wire("anthropic", FakeAnthropic(usage=usage))

    streamed = await wired.stream()
    completion = await wired.complete()

    expected = ProviderUsage(
        10, len(wired.fake.deltas), cache_creation_input_tokens=4, cache_read_input_tokens=6
    )
    assert streamed.usage == expected
    assert completion.usage == expected


async def test_input_counts_repeated_in_message_delta_are_assigned_too(wire):
    final = {"input_tokens": 20, "cache_read_input_tokens": 3, "output_tokens": 7}
    wired = await wire("anthropic", FakeAnthropic(message_delta_usage=[final]))

    streamed = await wired.stream()

    assert streamed.usage == ProviderUsage(20, 7, cache_read_input_tokens=3)


async def test_an_error_event_in_the_stream_raises_with_the_status_it_stands_for(http, ask):
    fake = await FakeAnthropic().start()
    try:
        fake.break_stream_after(0, "error")  # overloaded_error before any text
        adapter = AnthropicProvider(http, base_url=fake.url, version="2023-06-01", timeout_seconds=1)

        with pytest.raises(ProviderError) as failed:
            async for _ in adapter.stream(ask(), "key"):
                pass
    finally:
        await fake.stop()

    assert (failed.value.status, failed.value.transient) == (529, True)


async def test_an_overloaded_error_before_the_first_text_is_retried_unseen(wire):
    wired = await wire("anthropic", FakeAnthropic())
    wired.fake.break_stream_after(0, "error", times=1)  # after message_start, before any text

    streamed = await wired.stream()

    assert streamed.texts == wired.fake.deltas
    assert [report.output_tokens for report in streamed.reports] == [None, len(wired.fake.deltas)]
    assert len(wired.fake.requests) == 2
