"""Every provider the service can call, built once from the settings (the composition root's part).

``build_providers(settings, http)`` gives the chat providers and the image providers by name, each
wrapped in the same bounded retry, and which of them the platform can pay for with its own key.
``local`` and ``ollama`` need no key and are always available; the others need theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from execution_proxy.adapters.providers.anthropic import AnthropicProvider
from execution_proxy.adapters.providers.base import ChatProvider, ImageProvider
from execution_proxy.adapters.providers.fal import FalProvider
from execution_proxy.adapters.providers.gemini import GeminiProvider
from execution_proxy.adapters.providers.local import LocalProvider
from execution_proxy.adapters.providers.ollama import OllamaProvider
from execution_proxy.adapters.providers.openai import OpenAIProvider
from execution_proxy.adapters.providers.retrying import RetryingChat, RetryingImages, RetryPolicy
from execution_proxy.settings import ExecutionSettings

KEYLESS = frozenset({"local", "ollama"})


@dataclass(frozen=True)
class Providers:
    chat: Mapping[str, ChatProvider]
    images: Mapping[str, ImageProvider]
    # The platform's own keys by provider (only those set). Never in a repr: it could reach a log.
    platform_keys: Mapping[str, str] = field(default_factory=dict, repr=False)

    def platform_key(self, provider: str) -> str | None:
        """The key to call ``provider`` with on the platform's account (None: keyless or unset)."""
        return self.platform_keys.get(provider) or None

    def has_platform_key(self, provider: str) -> bool:
        """Whether the platform can call ``provider`` itself (credit routes need it)."""
        known = provider in self.chat or provider in self.images
        return known and (provider in KEYLESS or self.platform_key(provider) is not None)


def build_providers(settings: ExecutionSettings, http: aiohttp.ClientSession) -> Providers:
    timeout = settings.provider_timeout_seconds
    policy = RetryPolicy.of(settings)
    gemini = GeminiProvider(http, base_url=settings.gemini_api_url, timeout_seconds=timeout)
    chat: list[ChatProvider] = [
        AnthropicProvider(
            http,
            base_url=settings.anthropic_api_url,
            version=settings.anthropic_version,
            timeout_seconds=timeout,
        ),
        OpenAIProvider(http, base_url=settings.openai_api_url, timeout_seconds=timeout),
        gemini,
        OllamaProvider(http, base_url=settings.ollama_url, timeout_seconds=timeout),
        LocalProvider(token_delay_ms=settings.local_token_delay_ms),
    ]
    images: list[ImageProvider] = [
        FalProvider(http, base_url=settings.fal_api_url, timeout_seconds=settings.fal_timeout_seconds),
        gemini,  # its image models (``gemini-2.5-flash-image``), through the same generateContent
    ]
    keys = {
        "anthropic": settings.anthropic_api_key,
        "openai": settings.openai_api_key,
        "gemini": settings.gemini_api_key,
        "fal": settings.fal_api_key,
    }
    return Providers(
        chat={provider.name: RetryingChat(provider, policy) for provider in chat},
        images={provider.name: RetryingImages(provider, policy) for provider in images},
        platform_keys={name: key for name, key in keys.items() if key},
    )
