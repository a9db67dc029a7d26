"""billing-webhook's secrets and mode defaults (ENV_MODE)."""

import os
import subprocess
import sys

import pytest

from billing_webhook.settings import DEV_LEMONSQUEEZY_WEBHOOK_SECRET, BillingSettings

STRONG = "k" * 32


def production(**values: object) -> BillingSettings:
    secrets = {
        "platform_api_key": STRONG,
        "supabase_jwt_secret": STRONG,
        "lemonsqueezy_webhook_secret": STRONG,
        "lemonsqueezy_api_key": STRONG,
    }
    return BillingSettings(env_mode="production", **{**secrets, **values})


def test_production_does_not_seed_the_test_mode_catalogue_by_default() -> None:
    assert production().seed_credit_packs is False
    assert BillingSettings(env_mode="development").seed_credit_packs is True


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"lemonsqueezy_webhook_secret": None}, "LEMONSQUEEZY_WEBHOOK_SECRET is missing"),
        ({"lemonsqueezy_webhook_secret": DEV_LEMONSQUEEZY_WEBHOOK_SECRET}, "is a development default"),
        ({"lemonsqueezy_webhook_secret": "w" * 31}, "LEMONSQUEEZY_WEBHOOK_SECRET is shorter than 32"),
        ({"lemonsqueezy_api_key": ""}, "LEMONSQUEEZY_API_KEY is empty"),
    ],
)
def test_production_refuses_a_weak_lemonsqueezy_secret(values: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        production(**values)


def test_serve_in_production_without_secrets_exits_with_one_line_naming_them() -> None:
    secrets = ("LEMONSQUEEZY_", "PLATFORM_", "SUPABASE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(secrets)}
    refused = subprocess.run(
        [sys.executable, "-m", "billing_webhook", "serve"],
        env={**env, "ENV_MODE": "production", "SUPABASE_JWT_SECRET": STRONG},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("refusing to start: ENV_MODE=production: ")
    for name in ("PLATFORM_API_KEY", "LEMONSQUEEZY_WEBHOOK_SECRET", "LEMONSQUEEZY_API_KEY"):
        assert name in line
