"""Bounded retries of transient provider failures, the same for every adapter.

A transient failure (``ProviderError.transient``: 429, 5xx, a reset connection) is tried again, at
most ``retries`` times, after the wait the provider asked for (``Retry-After``, capped) or else a
short doubling backoff. Only before the answer began: once a text delta went out, a retry would send
the caller a second, different answer, so a failure then is final. A timeout is never retried (the
caller has already waited the longest it accepts).

In a stream, the usage reports a provider sends before its first text (Anthropic's ``message_start``)
are held back until that text comes, so a retry after them is still invisible to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from execution_proxy.adapters.providers.base import (
    ChatProvider,
    ChatRequest,
    Completion,
    ImageProvider,
    ImageRequest,
    ImageResult,
    ProviderError,
    ProviderTimeout,
    StreamItem,
    TextDelta,
)
from execution_proxy.settings import ExecutionSettings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2
    max_retry_after_seconds: float = 10.0
    first_backoff_seconds: float = 0.2

    @classmethod
    def of(cls, settings: ExecutionSettings) -> RetryPolicy:
        return cls(settings.provider_retries, settings.provider_max_retry_after_seconds)

    def wait_before_retry(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None: do not retry."""
        if isinstance(error, ProviderTimeout) or not error.transient or attempt >= self.retries:
            return None
        if error.retry_after_seconds is not None:
            return min(error.retry_after_seconds, self.max_retry_after_seconds)
        return self.first_backoff_seconds * 2**attempt


class RetryingChat:
    """A ``ChatProvider`` that retries ``inner`` by ``policy``."""

    def __init__(self, inner: ChatProvider, policy: RetryPolicy) -> None:
        self.inner, self.policy = inner, policy
        self.name = inner.name

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion:
        attempt = 0
        while True:
            try:
                return await self.inner.complete(request, api_key)
            except ProviderError as error:
                wait = self.policy.wait_before_retry(error, attempt)
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            attempt += 1

    async def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        attempt = 0
        while True:
            held: list[StreamItem] = []
            async with aclosing(self.inner.stream(request, api_key)) as items:
                try:
                    async for item in items:
                        held.append(item)
                        if isinstance(item, TextDelta):
                            break
                except ProviderError as error:
                    wait = self.policy.wait_before_retry(error, attempt)
                    if wait is None:
                        raise
                else:
                    # The answer began (or ended without text): from here on, no retry.
                    for item in held:
                        yield item
                    async for item in items:
                        yield item
                    return
            await asyncio.sleep(wait)
            attempt += 1


class RetryingImages:
    """An ``ImageProvider`` that retries ``inner`` by ``policy``."""

    def __init__(self, inner: ImageProvider, policy: RetryPolicy) -> None:
        self.inner, self.policy = inner, policy
        self.name = inner.name

    async def generate(self, request: ImageRequest, api_key: str | None) -> ImageResult:
        attempt = 0
        while True:
            try:
                return await self.inner.generate(request, api_key)
            except ProviderError as error:
                wait = self.policy.wait_before_retry(error, attempt)
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            attempt += 1
