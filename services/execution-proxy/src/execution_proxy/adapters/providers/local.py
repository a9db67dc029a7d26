"""The built-in ``local`` provider: no key, no network, a reply made up from the prompt.

For development, demos and benchmarks: the same messages always give the same reply, and the reply
is built so its counts are exact. Every piece is one short word of at most three UTF-8 bytes
(``tokens.BYTES_PER_TOKEN``), so ``tokens.count_streamed`` of the pieces is the number of pieces,
and a small ``max_tokens`` gives exactly that many pieces. The usage it states is the counted usage:
``count_prompt`` of the contents and ``count_streamed`` of the pieces.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from execution_proxy.adapters.providers.base import (
    ChatRequest,
    Completion,
    ProviderUsage,
    StreamItem,
    TextDelta,
    UsageReport,
)
from execution_proxy.domain import tokens

NAME = "local"
WORDS = (
    "lo", "la", "so", "we", "go", "up", "on", "in", "at", "by", "to", "no", "be", "do", "it", "my",
    "an", "as", "if", "or", "of", "us", "me", "he", "oh", "ok", "hi", "yo", "mu", "pi", "ox", "ax",
)  # fmt: skip
MIN_PIECES = 24
EXTRA_PIECES = 40
"""A reply runs 24 to 63 pieces when ``max_tokens`` allows."""


class LocalProvider:
    name = NAME

    def __init__(self, *, token_delay_ms: float = 0.0) -> None:
        self._delay = max(token_delay_ms, 0.0) / 1000

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion:
        chosen = pieces(request)
        return Completion("".join(chosen), usage_of(request, chosen))

    async def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        chosen = pieces(request)
        yield UsageReport(ProviderUsage(input_tokens=input_tokens(request)))
        for piece in chosen:
            # Even without a delay, let other tasks run between pieces, as a network stream would.
            await asyncio.sleep(self._delay)
            yield TextDelta(piece)
        yield UsageReport(usage_of(request, chosen))


def pieces(request: ChatRequest) -> list[str]:
    """The reply's pieces: words chosen by a hash of the messages, each with its space (the last
    with a full stop), ``24 + hash % 40`` of them, at most ``max_tokens``."""
    seed = hashlib.sha256()
    for message in request.messages:
        seed.update(f"{message.role}\x00{message.content}\x01".encode())
    digest = seed.digest()
    count = min(MIN_PIECES + int.from_bytes(digest[:4], "big") % EXTRA_PIECES, max(request.max_tokens, 0))
    chosen = []
    for index in range(count):
        byte = hashlib.sha256(digest + index.to_bytes(4, "big")).digest()[0]
        chosen.append(WORDS[byte % len(WORDS)] + ("." if index == count - 1 else " "))
    return chosen


def input_tokens(request: ChatRequest) -> int:
    return tokens.count_prompt(message.content for message in request.messages)


def usage_of(request: ChatRequest, chosen: list[str]) -> ProviderUsage:
    return ProviderUsage(input_tokens=input_tokens(request), output_tokens=tokens.count_streamed(chosen))
