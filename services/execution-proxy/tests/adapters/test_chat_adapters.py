"""What every remote chat adapter does the same way, each against its fake provider.

Each test runs for anthropic, gemini, ollama and openai (``wired``; ``keyed``: those with keys),
with the retries the service wraps them in, and a 0.3 s provider timeout.
"""

from __future__ import annotations

import time

import pytest

from execution_proxy.adapters.providers.base import ProviderError, ProviderTimeout, TextDelta
from lf_testing.waiting import eventually


async def test_a_buffered_answer_is_the_whole_reply_with_the_stated_usage(wired):
    completion = await wired.complete()

    assert completion.content == wired.fake.reply
    assert completion.usage.input_tokens == wired.fake.usage.input_tokens
    assert completion.usage.output_tokens == len(wired.fake.deltas)


async def test_a_stream_yields_the_deltas_in_order_and_ends_with_the_stated_usage(wired):
    streamed = await wired.stream()

    assert streamed.texts == wired.fake.deltas
    assert streamed.usage.input_tokens == wired.fake.usage.input_tokens
    assert streamed.usage.output_tokens == len(wired.fake.deltas)
    assert wired.fake.streams_completed == 1


async def test_a_refusal_is_surfaced_with_its_status_and_not_retried(wired):
    wired.fake.fail_with(400, times=None)

    with pytest.raises(ProviderError) as buffered:
        await wired.complete()
    with pytest.raises(ProviderError) as streamed:
        await wired.stream()

    assert (buffered.value.status, buffered.value.transient) == (400, False)
    assert (streamed.value.status, streamed.value.transient) == (400, False)
    assert len(wired.fake.requests) == 2


async def test_a_wrong_key_is_refused_by_the_provider(keyed):
    keyed.key = "not-the-key"

    with pytest.raises(ProviderError) as refused:
        await keyed.complete()

    assert refused.value.status in (400, 401)  # Gemini refuses a bad key with 400
    assert not refused.value.transient
    assert "not-the-key" not in str(refused.value)


async def test_a_provider_that_never_answers_times_out_quickly_and_is_not_retried(wired):
    wired.fake.hang()

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await wired.complete()
    with pytest.raises(ProviderTimeout):
        await wired.stream()

    assert time.monotonic() - started < 2.0
    assert len(wired.fake.requests) == 2


async def test_a_stream_that_stalls_between_chunks_times_out(wired):
    wired.fake.hang(after_deltas=2)
    streamed = await _partial(wired, ProviderTimeout)

    assert streamed == wired.fake.deltas[:2]


async def test_a_malformed_stream_is_a_provider_error_not_retried(wired):
    wired.fake.break_stream_after(2, "malformed")

    with pytest.raises(ProviderError) as broken:
        await wired.stream()

    assert not isinstance(broken.value, ProviderTimeout)
    assert not broken.value.transient
    assert len(wired.fake.requests) == 1


async def test_a_429_before_the_first_token_is_retried_after_the_retry_after_it_asked(wired):
    wired.fake.fail_with(429, retry_after="0.2")

    started = time.monotonic()
    streamed = await wired.stream()
    waited = time.monotonic() - started

    assert streamed.texts == wired.fake.deltas
    assert len(wired.fake.requests) == 2
    assert waited >= 0.2


async def test_a_buffered_call_is_retried_after_a_5xx(wired):
    wired.fake.fail_with(503, retry_after=0)

    completion = await wired.complete()

    assert completion.content == wired.fake.reply
    assert len(wired.fake.requests) == 2


async def test_a_transient_failure_that_persists_gives_up_after_the_retries(wired):
    wired.fake.fail_with(503, retry_after="0.01", times=None)

    with pytest.raises(ProviderError) as failed:
        await wired.stream()

    assert (failed.value.status, failed.value.transient) == (503, True)
    assert failed.value.retry_after_seconds == pytest.approx(0.01)
    assert len(wired.fake.requests) == 3  # the call and settings.provider_retries (2) retries


async def test_a_connection_dropped_after_the_first_token_is_not_retried(wired):
    wired.fake.break_stream_after(1, "drop")

    texts = await _partial(wired, ProviderError)

    assert texts == wired.fake.deltas[:1]
    assert len(wired.fake.requests) == 1


async def test_an_in_stream_error_after_the_first_token_is_not_retried(wired):
    wired.fake.break_stream_after(1, "error")

    texts = await _partial(wired, ProviderError)

    assert texts == wired.fake.deltas[:1]
    assert len(wired.fake.requests) == 1


async def test_a_stream_that_ends_without_its_closing_frames_is_cut_short(wired):
    wired.fake.break_stream_after(2, "end")

    texts = await _partial(wired, ProviderError)

    assert texts == wired.fake.deltas[:2]
    assert len(wired.fake.requests) == 1


async def test_a_stream_cut_before_the_first_token_is_retried(wired):
    wired.fake.break_stream_after(0, "drop", times=1)

    streamed = await wired.stream()

    assert streamed.texts == wired.fake.deltas
    assert len(wired.fake.requests) == 2


async def test_closing_the_stream_early_closes_the_providers_connection(wired):
    wired.fake.reply_with("word " * 200)
    wired.fake.delay_between_deltas = 0.01
    items = wired.items()

    first = await anext(items)
    while not isinstance(first, TextDelta):
        first = await anext(items)
    await items.aclose()

    async def fake_saw_the_client_leave() -> bool:
        return wired.fake.disconnects == 1

    await eventually(fake_saw_the_client_leave, timeout=2)
    assert wired.fake.streams_completed == 0


async def test_a_missing_key_is_refused_without_calling_the_provider(keyed):
    keyed.key = None

    with pytest.raises(ProviderError):
        await keyed.complete()
    with pytest.raises(ProviderError):
        await keyed.stream()

    assert keyed.fake.requests == []


async def _partial(wired, error: type[Exception]) -> list[str]:
    """The texts a stream gave before it raised ``error`` (which it must)."""
    streamed = wired.items()
    texts: list[str] = []
    with pytest.raises(error):
        async for item in streamed:
            if isinstance(item, TextDelta):
                texts.append(item.text)
    return texts
