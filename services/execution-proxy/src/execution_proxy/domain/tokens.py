"""Counting tokens where no provider states them: what a reservation must cover, and what a stream
cut short produced.

No tokenizer of every provider is at hand (they differ, and some are not public), so the count is a
deliberately generous estimate: one token per three UTF-8 bytes, the densest ratio common text
reaches (English averages about four). Reserving too much only holds credits for a moment; charging
too little would lose money. A streamed delta is never counted as less than one token.
"""

from __future__ import annotations

from collections.abc import Iterable

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 4
"""Role markers and separators each message costs on every provider we know."""
REPLY_PRIMING_TOKENS = 3


def count_text(text: str) -> int:
    size = len(text.encode("utf-8"))
    return -(-size // BYTES_PER_TOKEN)


def count_prompt(contents: Iterable[str]) -> int:
    """The input tokens of a prompt made of these message contents."""
    return REPLY_PRIMING_TOKENS + sum(MESSAGE_OVERHEAD_TOKENS + count_text(content) for content in contents)


def count_streamed(deltas: Iterable[str]) -> int:
    """The output tokens of a stream that ended before the provider stated them."""
    pieces = list(deltas)
    return max(len(pieces), count_text("".join(pieces)))
