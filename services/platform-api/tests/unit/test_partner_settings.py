"""Partner settings: secrets with no working default outside development, once partners are on."""

from __future__ import annotations

import base64
import os

import pytest

from platform_api.settings import DEV_PARTNER_TOKEN_MASTER_KEY, PlatformSettings

PRODUCTION = {
    "env_mode": "production",
    "platform_api_key": "p" * 40,
    "supabase_jwt_secret": "s" * 40,
}
A_KEY = base64.b64encode(os.urandom(32)).decode()


def test_development_has_a_token_key_and_production_without_partners_needs_none() -> None:
    assert PlatformSettings(env_mode="development").partner_token_master_key == DEV_PARTNER_TOKEN_MASTER_KEY
    assert PlatformSettings(**PRODUCTION).partner_token_master_key is None


def test_production_with_chainabit_refuses_to_start_without_its_key_and_a_token_key() -> None:
    with pytest.raises(ValueError) as refused:
        PlatformSettings(**PRODUCTION, chainabit_api_url="https://chainabit.invalid")
    assert "CHAINABIT_PARTNER_API_KEY is empty" in str(refused.value)
    assert "PARTNER_TOKEN_MASTER_KEY is missing" in str(refused.value)


def test_production_refuses_the_public_development_token_key() -> None:
    with pytest.raises(ValueError, match="PARTNER_TOKEN_MASTER_KEY is a development default"):
        PlatformSettings(
            **PRODUCTION,
            chainabit_api_url="https://chainabit.invalid",
            chainabit_partner_api_key="k" * 40,
            partner_token_master_key=DEV_PARTNER_TOKEN_MASTER_KEY,
        )


def test_production_with_every_partner_secret_starts() -> None:
    settings = PlatformSettings(
        **PRODUCTION,
        chainabit_api_url="https://chainabit.invalid",
        chainabit_partner_api_key="k" * 40,
        partner_token_master_key=A_KEY,
    )
    assert settings.token_scopes == ["balance:read", "claims:write"]
