"""Envelope encryption of stored BYOK keys: ``lf_web.sealing`` for the ``byok`` purpose, each key's
secret bound to its key id and its owner (a ciphertext moved onto another key or another lenser does
not decrypt). How the envelope works, and why, is told there."""

from __future__ import annotations

from typing import Self
from uuid import UUID

from lf_web import sealing
from lf_web.sealing import Sealed, UnreadableKey, master_key_bytes, split_master_keys

__all__ = ["MasterKeys", "Sealed", "UnreadableKey", "master_key_bytes", "split_master_keys"]

PURPOSE = "byok"


class MasterKeys(sealing.MasterKeys):
    def __init__(
        self, current: bytes, previous: list[bytes] | tuple[bytes, ...] = (), *, purpose: str = PURPOSE
    ) -> None:
        super().__init__(current, previous, purpose=purpose)

    @classmethod
    def from_settings(  # type: ignore[override]
        cls,
        current: str | None,
        previous: str = "",
        *,
        purpose: str = PURPOSE,
        setting: str = "BYOK_MASTER_KEY",
    ) -> Self:
        return super().from_settings(current, previous, purpose=purpose, setting=setting)

    def seal(self, secret: str, *, key_id: UUID, lenser_id: UUID) -> Sealed:
        return self.seal_bound(secret, (key_id, lenser_id))

    def open(self, sealed: Sealed, *, key_id: UUID, lenser_id: UUID) -> str:
        return self.open_bound(sealed, (key_id, lenser_id))
