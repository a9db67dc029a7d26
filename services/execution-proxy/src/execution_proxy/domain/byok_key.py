"""A lenser's own provider key (BYOK), as the log knows it: whose, for which provider, its label
and 4-character suffix, active or revoked. Never the secret: that is encrypted beside the log
(``byok_key_material``) and deleted when the key is revoked.

A key belongs to one lenser; to anyone else it does not exist (``KeyResolutionFailed``, the answer
a missing key gets), so a key id learned somehow reveals nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self
from uuid import UUID

from execution_proxy.domain import errors
from execution_proxy.domain.events import KeyRevoked, KeyStored
from lf_eventstore import Aggregate, by_name

# The providers a lenser's key can pay for: the chat and image providers that take keys
# (local and ollama take none).
BYOK_PROVIDERS: frozenset[str] = frozenset({"anthropic", "openai", "gemini", "fal"})
MAX_LABEL_LENGTH = 100
SUFFIX_LENGTH = 4
MIN_SECRET_LENGTH = 8
"""Shorter, the listed suffix would be half of it; no provider issues keys that short."""
MAX_SECRET_LENGTH = 4096


def suffix_of(secret: str) -> str:
    return secret[-SUFFIX_LENGTH:]


def _check_new_key(provider: str, secret: str, label: str | None) -> None:
    """The rules of a key to store, before anything is encrypted or recorded."""
    problems = []
    if provider not in BYOK_PROVIDERS:
        allowed = ", ".join(sorted(BYOK_PROVIDERS))
        problems.append({"field": "provider", "message": f"must be one of {allowed}"})
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH or secret != secret.strip():
        problems.append(
            {
                "field": "key",
                "message": f"must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters,"
                " without surrounding whitespace",
            }
        )
    if label is not None and len(label) > MAX_LABEL_LENGTH:
        problems.append({"field": "label", "message": f"at most {MAX_LABEL_LENGTH} characters"})
    if problems:
        raise errors.InvalidKey(problems)


class ByokKey(Aggregate):
    event_types = by_name(KeyStored, KeyRevoked)

    def __init__(self) -> None:
        super().__init__()
        self.stored: KeyStored | None = None
        self.revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.stored is not None and self.revoked_at is None

    def store(
        self, key_id: UUID, *, lenser_id: UUID, provider: str, secret: str, label: str | None, at: datetime
    ) -> None:
        """``secret`` only to check it and take its suffix: it goes no further than this call."""
        if not self.is_new:
            raise AssertionError(f"key {key_id} exists already: ids are fresh uuid4s")
        _check_new_key(provider, secret, label)
        self._record(
            KeyStored(
                key_id=key_id,
                lenser_id=lenser_id,
                provider=provider,
                label=label,
                suffix=suffix_of(secret),
                at=at,
            )
        )

    def owned_by(self, lenser_id: UUID) -> KeyStored:
        """The key as stored, if ``lenser_id`` owns it; to anyone else it does not exist."""
        if self.stored is None or self.stored.lenser_id != lenser_id:
            raise errors.KeyResolutionFailed()
        return self.stored

    def revoke(self, lenser_id: UUID, *, at: datetime) -> bool:
        """Revoke it for its owner; False when it was revoked already (revoking is idempotent)."""
        stored = self.owned_by(lenser_id)
        if self.revoked_at is not None:
            return False
        self._record(KeyRevoked(key_id=stored.key_id, lenser_id=lenser_id, at=at))
        return True

    def _apply(self, event: Any) -> None:
        if isinstance(event, KeyStored):
            self.stored = event
        elif isinstance(event, KeyRevoked):
            self.revoked_at = event.at

    def to_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError("a key is at most two events: never snapshotted")

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError("a key is at most two events: never snapshotted")
