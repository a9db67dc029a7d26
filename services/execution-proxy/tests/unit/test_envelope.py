"""Envelope encryption of BYOK keys: a data key per secret, wrapped by a master key that can rotate."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import subprocess
import sys
from uuid import uuid4

import pytest

from execution_proxy.adapters.envelope import MasterKeys, Sealed, UnreadableKey, master_key_bytes

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
A, B, C = (os.urandom(32) for _ in range(3))
KEY_ID, LENSER = uuid4(), uuid4()


def flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def sealed_under(masters: MasterKeys) -> Sealed:
    return masters.seal(SECRET, key_id=KEY_ID, lenser_id=LENSER)


def test_a_sealed_secret_opens_to_itself_and_holds_no_plaintext() -> None:
    masters = MasterKeys(A)

    sealed = sealed_under(masters)

    assert masters.open(sealed, key_id=KEY_ID, lenser_id=LENSER) == SECRET
    assert SECRET.encode() not in sealed.ciphertext + sealed.wrapped_data_key
    assert SECRET not in repr(sealed)


def test_each_seal_uses_a_fresh_data_key_and_fresh_nonces() -> None:
    masters = MasterKeys(A)

    first, second = sealed_under(masters), sealed_under(masters)

    assert first.wrapped_data_key != second.wrapped_data_key
    assert first.secret_nonce != second.secret_nonce and first.data_key_nonce != second.data_key_nonce
    assert first.ciphertext != second.ciphertext


@pytest.mark.parametrize("part", ["ciphertext", "secret_nonce", "wrapped_data_key", "data_key_nonce"])
def test_any_altered_part_does_not_open(part: str) -> None:
    masters = MasterKeys(A)
    sealed = sealed_under(masters)
    altered = dataclasses.replace(sealed, **{part: flip(getattr(sealed, part))})

    with pytest.raises(UnreadableKey) as refused:
        masters.open(altered, key_id=KEY_ID, lenser_id=LENSER)
    assert SECRET not in str(refused.value)


def test_a_secret_moved_onto_another_key_or_owner_does_not_open() -> None:
    masters = MasterKeys(A)
    sealed = sealed_under(masters)

    with pytest.raises(UnreadableKey):
        masters.open(sealed, key_id=uuid4(), lenser_id=LENSER)
    with pytest.raises(UnreadableKey):
        masters.open(sealed, key_id=KEY_ID, lenser_id=uuid4())


def test_a_data_key_claimed_to_be_under_another_master_does_not_unwrap() -> None:
    masters = MasterKeys(A, [B])
    sealed = sealed_under(masters)
    relabelled = dataclasses.replace(sealed, master_key_id=MasterKeys(B).current.key_id)

    with pytest.raises(UnreadableKey):
        masters.open(relabelled, key_id=KEY_ID, lenser_id=LENSER)


def test_rotation_opens_old_keys_until_rewrapped_then_needs_only_the_new_master() -> None:
    sealed = sealed_under(MasterKeys(A))
    rotating = MasterKeys(B, [A])

    assert rotating.open(sealed, key_id=KEY_ID, lenser_id=LENSER) == SECRET
    rewrapped = rotating.rewrap(sealed)

    assert rewrapped is not None and rewrapped.master_key_id == rotating.current.key_id
    assert (rewrapped.ciphertext, rewrapped.secret_nonce) == (sealed.ciphertext, sealed.secret_nonce)
    assert MasterKeys(B).open(rewrapped, key_id=KEY_ID, lenser_id=LENSER) == SECRET
    assert rotating.rewrap(rewrapped) is None  # already under the current master


def test_a_key_under_a_master_not_configured_fails_naming_only_the_master_id() -> None:
    sealed = sealed_under(MasterKeys(A))

    with pytest.raises(UnreadableKey) as refused:
        MasterKeys(C, [B]).open(sealed, key_id=KEY_ID, lenser_id=LENSER)

    assert str(refused.value) == f"master key {sealed.master_key_id} is not configured"


def test_a_master_keys_id_is_the_start_of_its_sha256() -> None:
    assert MasterKeys(A).current.key_id == hashlib.sha256(A).hexdigest()[:16]


@pytest.mark.parametrize(
    ("value", "problem"),
    [("not base64!", "is not valid base64"), (base64.b64encode(b"x" * 31).decode(), "not 31")],
)
def test_a_master_key_must_be_base64_of_32_bytes(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        master_key_bytes(value)


def test_serve_with_a_bad_master_key_exits_with_one_line_naming_it() -> None:
    good = base64.b64encode(A).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYOK_")}
    refused = subprocess.run(
        [sys.executable, "-m", "execution_proxy", "serve"],
        env={
            **env,
            "ENV_MODE": "development",
            "BYOK_MASTER_KEY": good,
            "BYOK_PREVIOUS_MASTER_KEYS": "c2hvcnQ=",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode != 0
    [line] = refused.stderr.strip().splitlines()
    assert line == (
        "refusing to start: BYOK_PREVIOUS_MASTER_KEYS (key 1) must be base64 of 32 bytes"
        " (openssl rand -base64 32), not 5"
    )
