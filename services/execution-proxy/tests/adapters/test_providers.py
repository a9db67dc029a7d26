"""build_providers: every provider by name, retried, and which the platform can pay for."""

from __future__ import annotations

from execution_proxy.adapters.providers import build_providers
from execution_proxy.adapters.providers.retrying import RetryingChat, RetryingImages


def test_every_provider_is_built_and_wrapped_in_retries(http, settings_for):
    providers = build_providers(settings_for(), http)

    assert set(providers.chat) == {"anthropic", "openai", "gemini", "ollama", "local"}
    assert set(providers.images) == {"fal", "gemini"}  # Gemini image models too
    assert all(isinstance(provider, RetryingChat) for provider in providers.chat.values())
    assert all(isinstance(provider, RetryingImages) for provider in providers.images.values())
    assert all(name == provider.name for name, provider in providers.chat.items())


def test_keyless_providers_are_always_available_the_others_need_their_key(http, settings_for):
    providers = build_providers(
        settings_for(anthropic_api_key="sk-ant-secret", fal_api_key="fal-secret"), http
    )

    assert providers.has_platform_key("local") and providers.platform_key("local") is None
    assert providers.has_platform_key("ollama") and providers.platform_key("ollama") is None
    assert providers.has_platform_key("anthropic") and providers.platform_key("anthropic") == "sk-ant-secret"
    assert providers.has_platform_key("fal")
    assert not providers.has_platform_key("openai") and providers.platform_key("openai") is None
    assert not providers.has_platform_key("gemini")
    assert not providers.has_platform_key("nonesuch")


def test_the_keys_never_show_in_a_repr(http, settings_for):
    providers = build_providers(settings_for(openai_api_key="sk-secret-123"), http)

    assert "sk-secret-123" not in repr(providers)
