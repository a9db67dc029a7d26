"""What an execution is charged for: the provider's statement where it made one, else our count.

A stream cut short (the client went away, the provider broke off) has no final statement from most
providers; it is charged for what it produced, counted (``tokens.count_streamed``), never for zero.
Where the provider stated the input but not the output (Anthropic states input at the start), each
count comes from where it can: that usage is ``partial``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from execution_proxy.domain.pricing import Metered

UsageSource = Literal["provider", "counted", "partial"]


@dataclass(frozen=True, slots=True)
class Stated:
    """What a provider stated (``None``: not stated). Mirrors the adapters' ``ProviderUsage``."""

    input_tokens: int | None
    output_tokens: int | None
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0


def settle_usage(
    stated: Stated | None, *, counted_input: int, counted_output: int
) -> tuple[Metered, UsageSource]:
    if stated is None:
        stated = Stated(None, None)
    input_tokens = counted_input if stated.input_tokens is None else stated.input_tokens
    output_tokens = counted_output if stated.output_tokens is None else stated.output_tokens
    from_provider = (stated.input_tokens is not None, stated.output_tokens is not None)
    source: UsageSource = "provider" if all(from_provider) else "partial" if any(from_provider) else "counted"
    used = Metered(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=stated.cache_read_tokens,
        cache_write_tokens=stated.cache_write_tokens,
    )
    return used, source
