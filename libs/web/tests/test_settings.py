import pytest

from lf_web import ServiceSettings


def test_settings_are_read_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/app")
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")

    settings = ServiceSettings()

    assert (settings.database_url, settings.max_body_bytes) == ("postgresql://db.internal/app", 2048)


def test_version_prefers_platform_api_version_over_git_sha(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_SHA", "abc123")
    assert ServiceSettings().version == "abc123"

    monkeypatch.setenv("PLATFORM_API_VERSION", "0.2.0")
    assert ServiceSettings().version == "0.2.0"


def test_jwks_url_is_derived_from_the_supabase_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://project.supabase.co/")

    assert ServiceSettings().supabase_jwks_url == "https://project.supabase.co/auth/v1/.well-known/jwks.json"


def test_an_explicit_jwks_url_wins_over_the_derived_one() -> None:
    settings = ServiceSettings(supabase_url="https://p.supabase.co", supabase_jwks_url="https://keys/jwks")

    assert settings.supabase_jwks_url == "https://keys/jwks"


def test_a_service_subclass_sets_its_own_port_and_fields() -> None:
    class WalletSettings(ServiceSettings):
        port: int = 8786
        reservation_ttl_seconds: int = 300

    settings = WalletSettings()

    assert (settings.port, settings.reservation_ttl_seconds) == (8786, 300)


def test_unknown_keyword_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValueError, match="version"):
        ServiceSettings(version="1.0")
