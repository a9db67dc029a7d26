"""lf_web.sealing for any kind of secret: a purpose and a binding that a ciphertext cannot leave.
(execution-proxy's tests/unit/test_envelope.py covers the envelope itself: nonces, rotation, tampering.)"""

from __future__ import annotations

import os

import pytest

from lf_web.sealing import MasterKeys, UnreadableKey, checked_master_key, checked_previous_master_keys

MASTER = os.urandom(32)


def test_a_secret_opens_only_for_its_purpose_and_its_binding() -> None:
    tokens, other = MasterKeys(MASTER, purpose="partner-token"), MasterKeys(MASTER, purpose="byok")
    sealed = tokens.seal_bound("cb_at_secret", ("lenser", "chainabit", "access_token"))

    assert tokens.open_bound(sealed, ("lenser", "chainabit", "access_token")) == "cb_at_secret"
    with pytest.raises(UnreadableKey):
        tokens.open_bound(sealed, ("lenser", "chainabit", "refresh_token"))
    with pytest.raises(UnreadableKey):
        other.open_bound(sealed, ("lenser", "chainabit", "access_token"))


def test_from_settings_names_the_setting_it_lacks() -> None:
    with pytest.raises(ValueError, match="PARTNER_TOKEN_MASTER_KEY is not set"):
        MasterKeys.from_settings(None, "", purpose="partner-token", setting="PARTNER_TOKEN_MASTER_KEY")


def test_settings_checks_name_the_bad_key() -> None:
    assert checked_master_key("", "X_MASTER_KEY") is None
    with pytest.raises(ValueError, match="X_MASTER_KEY must be base64 of 32 bytes"):
        checked_master_key("c2hvcnQ=", "X_MASTER_KEY")
    with pytest.raises(ValueError, match=r"X_PREVIOUS_MASTER_KEYS \(key 2\) is not valid base64"):
        checked_previous_master_keys(
            "ZGV2LXBhcnRuZXItdG9rZW4ta2V5LWNoYW5nZS1tZS0=,%%%", "X_PREVIOUS_MASTER_KEYS"
        )
