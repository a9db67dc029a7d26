"""What a prompt may contain before any provider sees it (``execute.invalid_messages``).

Every problem is reported at once, each naming its message by index, so a client fixes its request
in one round. Content is never echoed back: it may hold anything.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from execution_proxy.domain.errors import InvalidMessages

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = get_args(Role)
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000
MAX_TOTAL_CHARS = 400_000
# C0 and C1 controls other than tab, newline and carriage return; they carry no text and are a
# classic way to smuggle instructions past a reader.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character other than tab, newline and carriage return
    (the rule of message content, also applied to an image prompt)."""
    return _CONTROL.search(text) is not None


def sanitize(raw: Any) -> tuple[ChatMessage, ...]:
    """The messages as ``ChatMessage``s (content NFC-normalised), or ``InvalidMessages`` naming
    every problem."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidMessages([{"field": "messages", "message": "must be an array of messages"}])
    problems: list[dict[str, Any]] = []
    if not raw:
        problems.append({"field": "messages", "message": "must hold at least one message"})
    if len(raw) > MAX_MESSAGES:
        problems.append({"field": "messages", "message": f"at most {MAX_MESSAGES} messages"})
    messages: list[ChatMessage] = []
    total = 0
    for index, item in enumerate(raw[:MAX_MESSAGES]):
        where = f"messages.{index}"
        if not isinstance(item, dict):
            problems.append({"field": where, "message": "must be an object with role and content"})
            continue
        unknown = sorted(set(item) - {"role", "content"})
        if unknown:
            problems.append({"field": where, "message": f"unknown fields: {', '.join(unknown)}"})
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            problems.append({"field": f"{where}.role", "message": "must be system, user or assistant"})
        if not isinstance(content, str):
            problems.append({"field": f"{where}.content", "message": "must be a string"})
            continue
        content = unicodedata.normalize("NFC", content)
        if not content.strip():
            problems.append({"field": f"{where}.content", "message": "must not be empty"})
        elif len(content) > MAX_MESSAGE_CHARS:
            problems.append(
                {"field": f"{where}.content", "message": f"at most {MAX_MESSAGE_CHARS} characters"}
            )
        elif _CONTROL.search(content):
            problems.append({"field": f"{where}.content", "message": "contains control characters"})
        total += len(content)
        if role in ROLES:
            messages.append(ChatMessage(role, content))  # type: ignore[arg-type]
    if total > MAX_TOTAL_CHARS:
        problems.append({"field": "messages", "message": f"at most {MAX_TOTAL_CHARS} characters in all"})
    if messages and all(m.role == "system" for m in messages):
        problems.append({"field": "messages", "message": "needs a user or assistant message"})
    if problems:
        raise InvalidMessages(problems)
    return tuple(messages)
