"""The built-in local provider: deterministic, exact counts, no network."""

from __future__ import annotations

import time

import pytest

from execution_proxy.adapters.providers.base import ChatMessage, ChatRequest, TextDelta, UsageReport
from execution_proxy.adapters.providers.local import LocalProvider
from execution_proxy.domain import tokens


def request(text: str = "Tell me a story.", max_tokens: int = 1000) -> ChatRequest:
    return ChatRequest(
        "local-echo", (ChatMessage("system", "Be kind."), ChatMessage("user", text)), max_tokens
    )


async def pieces_of(provider: LocalProvider, chat: ChatRequest) -> tuple[list[str], list[UsageReport]]:
    texts, reports = [], []
    async for item in provider.stream(chat, None):
        if isinstance(item, TextDelta):
            texts.append(item.text)
        else:
            reports.append(item)
    return texts, reports


async def test_the_same_messages_give_the_same_reply_and_others_another():
    local = LocalProvider()

    first = await local.complete(request("Tell me a story."), None)
    again = await local.complete(request("Tell me a story."), None)
    other = await local.complete(request("Tell me a joke."), None)

    assert first == again
    assert other.content != first.content


@pytest.mark.parametrize("max_tokens", [1, 2, 5, 23])
async def test_a_small_max_tokens_gives_exactly_that_many_pieces(max_tokens):
    texts, reports = await pieces_of(LocalProvider(), request(max_tokens=max_tokens))

    assert len(texts) == max_tokens
    assert reports[-1].usage.output_tokens == max_tokens


async def test_its_natural_length_is_24_to_63_pieces_of_at_most_three_bytes():
    for number in range(20):
        texts, _ = await pieces_of(LocalProvider(), request(f"prompt {number}"))

        assert 24 <= len(texts) <= 63
        assert all(1 <= len(text.encode()) <= tokens.BYTES_PER_TOKEN for text in texts)


async def test_the_stated_usage_is_the_counted_usage():
    chat = request("Count me, ünïcödé included.")

    texts, reports = await pieces_of(LocalProvider(), chat)

    usage = reports[-1].usage
    assert usage.input_tokens == tokens.count_prompt(message.content for message in chat.messages)
    assert usage.output_tokens == tokens.count_streamed(texts) == len(texts)


async def test_streamed_equals_buffered():
    chat = request("Same either way?")
    local = LocalProvider()

    texts, reports = await pieces_of(local, chat)
    completion = await local.complete(chat, None)

    assert "".join(texts) == completion.content
    assert reports[-1].usage == completion.usage


async def test_it_streams_at_the_configured_pace():
    started = time.monotonic()
    texts, _ = await pieces_of(LocalProvider(token_delay_ms=10), request(max_tokens=10))

    assert len(texts) == 10
    assert time.monotonic() - started >= 0.09
