"""What every provider adapter offers: a chat completion, buffered or streamed, and what it used.

An adapter speaks one provider's wire format and nothing else: no prices, no credits, no retries of
its own (``retrying`` wraps every adapter the same way). It reports the usage the provider stated,
or ``None`` where the provider stated none; counting what a provider did not state is the
execution's business (``domain.usage``), because only the execution knows what reached the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from execution_proxy.domain.messages import ChatMessage, Role

__all__ = ["ChatMessage", "Role"]  # a sanitized prompt is the domain's; adapters only send it


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    """The provider's own model id (the catalogue's ``provider_model``)."""
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float | None = None  # a sampling knob, not money


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """Usage as the provider stated it. ``output_tokens`` is set only once the provider states the
    final count (Anthropic's ``message_start`` says 1 and means nothing by it).

    ``input_tokens`` are the input tokens billed at the plain input price: cache reads and cache
    writes are counted apart (Anthropic reports them apart already; OpenAI's ``cached_tokens`` and
    Gemini's ``cachedContentTokenCount`` are a part of their prompt count and are moved out of it).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    usage: ProviderUsage


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Everything the provider has stated about usage so far, merged (the latest report replaces
    the earlier ones: cumulative counts are assigned, never added)."""

    usage: ProviderUsage


StreamItem = TextDelta | UsageReport


class ProviderError(Exception):
    """The provider refused, failed or broke its protocol (answered as ``execute.provider_failed``).

    ``transient`` marks what may be retried before the first token: 429, 5xx, a reset connection.
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status
        self.transient = transient
        self.retry_after_seconds = retry_after_seconds


class ProviderTimeout(ProviderError):
    """No answer (or no next chunk) within the adapter's timeout."""


class ChatProvider(Protocol):
    name: str

    async def complete(self, request: ChatRequest, api_key: str | None) -> Completion: ...

    def stream(self, request: ChatRequest, api_key: str | None) -> AsyncIterator[StreamItem]:
        """Text deltas and usage reports as the provider sends them. Closing the iterator
        (``aclose``) closes the provider's connection: a client that went away stops generation."""
        ...


@dataclass(frozen=True, slots=True)
class ImageRequest:
    model: str
    prompt: str
    num_images: int
    image_size: str | None
    """fal's names (``landscape_4_3``, ...); None: the provider's default."""


@dataclass(frozen=True, slots=True)
class ImageResult:
    urls: tuple[str, ...]
    """Where each image is: an https URL, or a ``data:<mime>;base64,...`` URI for an image the
    provider answered inline (fal in sync mode may; Gemini always does)."""


class ImageProvider(Protocol):
    name: str

    async def generate(self, request: ImageRequest, api_key: str | None) -> ImageResult: ...
