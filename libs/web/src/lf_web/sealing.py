"""Envelope encryption of secrets kept at rest (AES-256-GCM, ``cryptography``'s AESGCM): lensers'
BYOK keys in execution-proxy, partner tokens in platform-api.

Each sealed secret gets a fresh random 256-bit *data key*. The secret is encrypted with it (random
96-bit nonce; associated data naming the secret's *purpose* and what it is bound to, e.g. the key id
and its owner, so a ciphertext moved onto another row, another lenser or another purpose does not
decrypt). The data key is then *wrapped*: encrypted with the master key (its own random nonce;
associated data = the purpose and the master key's id). Only the wrapped data key and the master
key's id are stored beside the ciphertext.

Why an envelope: rotating the master key re-wraps 32-byte data keys (``MasterKeys.rewrap``) and
never touches a secret; keys stored under an older master still open while it is listed among the
previous ones. A master key's id is the first 16 hex digits of its SHA-256: enough to pick the right
one, useless to a guesser of a 256-bit key.

Nothing here logs, and no error message carries a secret, a data key or a master key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class UnreadableKey(Exception):
    """A sealed secret that cannot be opened: its master key is not configured, or a part of it was
    altered. The message names the master key id, never any key material."""


def master_key_bytes(encoded: str) -> bytes:
    """The 32 bytes of a master key given as standard base64 (what a ``*_MASTER_KEY`` setting holds)."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must be base64 of {KEY_BYTES} bytes (openssl rand -base64 32), not {len(raw)}")
    return raw


def split_master_keys(encoded: str) -> list[str]:
    """A ``*_PREVIOUS_MASTER_KEYS`` setting: comma-separated, blanks ignored."""
    return [part.strip() for part in encoded.split(",") if part.strip()]


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    _aead: AESGCM = field(repr=False, compare=False)
    purpose: str

    @classmethod
    def of(cls, raw: bytes, purpose: str) -> MasterKey:
        return cls(hashlib.sha256(raw).hexdigest()[:16], AESGCM(raw), purpose)

    def wrap(self, data_key: bytes) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self._aead.encrypt(nonce, data_key, self._associated()), nonce

    def unwrap(self, wrapped: bytes, nonce: bytes) -> bytes:
        return self._aead.decrypt(nonce, wrapped, self._associated())

    def _associated(self) -> bytes:
        return f"lenserfight/{self.purpose}-data-key/v1|{self.key_id}".encode()


@dataclass(frozen=True)
class Sealed:
    """A sealed secret's material, as stored (e.g. a row of ``byok_key_material``)."""

    master_key_id: str
    wrapped_data_key: bytes
    data_key_nonce: bytes
    secret_nonce: bytes
    ciphertext: bytes = field(repr=False)


class MasterKeys:
    """The current master key (every new seal and every re-wrap) and the previous ones (unwrap only),
    for one ``purpose`` (``byok``, ``partner-token``): a secret sealed for one purpose never opens as
    another's, even under the same master key."""

    def __init__(
        self, current: bytes, previous: list[bytes] | tuple[bytes, ...] = (), *, purpose: str
    ) -> None:
        self.purpose = purpose
        self.current = MasterKey.of(current, purpose)
        self._by_id = {key.key_id: key for key in (MasterKey.of(raw, purpose) for raw in previous)}
        self._by_id[self.current.key_id] = self.current

    @classmethod
    def from_settings(cls, current: str | None, previous: str, *, purpose: str, setting: str) -> Self:
        """From a ``*_MASTER_KEY`` setting (named ``setting`` in the refusal) and its previous keys."""
        if current is None:
            raise ValueError(f"{setting} is not set")
        previous_keys = [master_key_bytes(p) for p in split_master_keys(previous)]
        return cls(master_key_bytes(current), previous_keys, purpose=purpose)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._by_id)

    def seal_bound(self, secret: str, bound_to: tuple[object, ...]) -> Sealed:
        """``secret`` sealed so that it opens only with the same ``bound_to`` (the row it belongs to)."""
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        secret_nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(secret_nonce, secret.encode(), self._bound(bound_to))
        wrapped, data_key_nonce = self.current.wrap(data_key)
        return Sealed(self.current.key_id, wrapped, data_key_nonce, secret_nonce, ciphertext)

    def open_bound(self, sealed: Sealed, bound_to: tuple[object, ...]) -> str:
        data_key = AESGCM(self._unwrap(sealed))
        try:
            plain = data_key.decrypt(sealed.secret_nonce, sealed.ciphertext, self._bound(bound_to))
        except (InvalidTag, ValueError):
            raise UnreadableKey("the secret does not decrypt under its data key (altered or moved)") from None
        return plain.decode()

    def rewrap(self, sealed: Sealed) -> Sealed | None:
        """The same material with its data key wrapped by the current master; None if it already is.
        The ciphertext is untouched: that is what the envelope is for."""
        if sealed.master_key_id == self.current.key_id:
            return None
        wrapped, nonce = self.current.wrap(self._unwrap(sealed))
        return Sealed(self.current.key_id, wrapped, nonce, sealed.secret_nonce, sealed.ciphertext)

    def _unwrap(self, sealed: Sealed) -> bytes:
        master = self._by_id.get(sealed.master_key_id)
        if master is None:
            raise UnreadableKey(f"master key {sealed.master_key_id} is not configured")
        try:
            return master.unwrap(sealed.wrapped_data_key, sealed.data_key_nonce)
        except (InvalidTag, ValueError):
            raise UnreadableKey(f"the data key does not unwrap under master key {master.key_id}") from None

    def _bound(self, bound_to: tuple[object, ...]) -> bytes:
        """The secret's associated data: its purpose and the row it belongs to, so it cannot be
        swapped onto another (for BYOK: ``lenserfight/byok-secret/v1|<key id>|<lenser id>``)."""
        context = f"lenserfight/{self.purpose}-secret/v1".encode()
        return b"|".join((context, *(str(part).encode() for part in bound_to)))


def checked_master_key(value: str | None, setting: str) -> str | None:
    """A ``*_MASTER_KEY`` setting as given (empty is unset), or a ValueError naming ``setting``: a
    bad key refuses the start in one line, where found later it would fail every use of it."""
    if value:
        try:
            master_key_bytes(value)
        except ValueError as bad:
            raise ValueError(f"{setting} {bad}") from None
    return value or None


def checked_previous_master_keys(value: str, setting: str) -> str:
    """A ``*_PREVIOUS_MASTER_KEYS`` setting, each key checked as ``checked_master_key`` does."""
    for position, key in enumerate(split_master_keys(value), start=1):
        try:
            master_key_bytes(key)
        except ValueError as bad:
            raise ValueError(f"{setting} (key {position}) {bad}") from None
    return value
