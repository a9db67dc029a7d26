"""Provider adapters under test: each against its fake provider on 127.0.0.1, with small timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from execution_proxy.adapters.providers import build_providers
from execution_proxy.adapters.providers.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Completion,
    ProviderUsage,
    StreamItem,
    TextDelta,
    UsageReport,
)
from execution_proxy.settings import ExecutionSettings
from lf_testing.fakes.anthropic import FakeAnthropic
from lf_testing.fakes.gemini import FakeGemini
from lf_testing.fakes.ollama import FakeOllama
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.fakes.provider import FakeProvider

KEY = "test-provider-key"
TIMEOUT = 0.3
"""Every provider call's timeout here: a hang fails fast."""
FAKES: dict[str, type[FakeProvider]] = {
    "anthropic": FakeAnthropic,
    "openai": FakeOpenAI,
    "gemini": FakeGemini,
    "ollama": FakeOllama,
}
URL_SETTINGS = {
    "anthropic": "anthropic_api_url",
    "openai": "openai_api_url",
    "gemini": "gemini_api_url",
    "ollama": "ollama_url",
    "fal": "fal_api_url",
}


def settings_for(**overrides: Any) -> ExecutionSettings:
    fields: dict[str, Any] = {"provider_timeout_seconds": TIMEOUT, "fal_timeout_seconds": TIMEOUT}
    return ExecutionSettings(env_mode="development", **(fields | overrides))


def ask(
    text: str = "Say hello.", *, system: str | None = None, max_tokens: int = 64, **extra: Any
) -> ChatRequest:
    messages = [ChatMessage("system", system)] if system else []
    messages.append(ChatMessage("user", text))
    return ChatRequest(model="test-model", messages=tuple(messages), max_tokens=max_tokens, **extra)


@dataclass
class Streamed:
    texts: list[str]
    reports: list[ProviderUsage]

    @property
    def usage(self) -> ProviderUsage:
        return self.reports[-1]


async def collect(items: AsyncIterator[StreamItem], streamed: Streamed | None = None) -> Streamed:
    """Every text and usage report of ``items``; pass ``streamed`` to keep what came before a raise."""
    streamed = streamed if streamed is not None else Streamed([], [])
    async for item in items:
        if isinstance(item, TextDelta):
            streamed.texts.append(item.text)
        else:
            assert isinstance(item, UsageReport)
            streamed.reports.append(item.usage)
    return streamed


@dataclass
class Wired:
    """A chat provider as the service builds it (retries included), its fake, and the key to use."""

    name: str
    fake: FakeProvider
    provider: ChatProvider
    key: str | None

    async def complete(self, request: ChatRequest | None = None) -> Completion:
        return await self.provider.complete(request or ask(), self.key)

    def items(self, request: ChatRequest | None = None) -> AsyncIterator[StreamItem]:
        return self.provider.stream(request or ask(), self.key)

    async def stream(self, request: ChatRequest | None = None, into: Streamed | None = None) -> Streamed:
        return await collect(self.items(request), into)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def wire(http: aiohttp.ClientSession) -> AsyncIterator[Callable[..., Awaitable[Wired]]]:
    """``await wire(name, fake, **settings)``: start ``fake`` and build provider ``name`` against it."""
    started: list[FakeProvider] = []

    async def wire_up(name: str, fake: FakeProvider, **settings: Any) -> Wired:
        started.append(await fake.start())
        providers = build_providers(settings_for(**{URL_SETTINGS[name]: fake.url}, **settings), http)
        return Wired(name, fake, providers.chat[name], None if name == "ollama" else KEY)

    try:
        yield wire_up
    finally:
        for fake in started:
            await fake.stop()


@pytest.fixture(params=sorted(FAKES))
async def wired(request: pytest.FixtureRequest, wire: Callable[..., Awaitable[Wired]]) -> Wired:
    """Each remote chat provider in turn, against its fake (which demands ``KEY``)."""
    name = request.param
    return await wire(name, FAKES[name](api_key=None if name == "ollama" else KEY))


@pytest.fixture(params=sorted(set(FAKES) - {"ollama"}))
async def keyed(request: pytest.FixtureRequest, wire: Callable[..., Awaitable[Wired]]) -> Wired:
    """Each remote chat provider that needs a key, against its fake (which demands ``KEY``)."""
    return await wire(request.param, FAKES[request.param](api_key=KEY))


@pytest.fixture(name="ask")
def ask_fixture() -> Callable[..., ChatRequest]:
    """``ask(text, system=..., max_tokens=..., temperature=...)``: a chat request."""
    return ask


@pytest.fixture(name="settings_for")
def settings_for_fixture() -> Callable[..., ExecutionSettings]:
    """``settings_for(**fields)``: development settings with this folder's small timeouts."""
    return settings_for
