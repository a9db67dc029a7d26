import pytest

from lf_web import ServiceSettings
from lf_web.settings import DEV_PLATFORM_API_KEY, DEV_SUPABASE_JWT_SECRET


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


STRONG = "x" * 32


def production(**values: object) -> ServiceSettings:
    return ServiceSettings(env_mode="production", **values)


def test_env_mode_unset_is_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENV_MODE", raising=False)

    with pytest.raises(ValueError, match="PLATFORM_API_KEY is missing"):
        ServiceSettings()


def test_development_has_the_dev_secrets() -> None:
    settings = ServiceSettings(env_mode="development")

    assert (settings.supabase_jwt_secret, settings.platform_api_key) == (
        DEV_SUPABASE_JWT_SECRET,
        DEV_PLATFORM_API_KEY,
    )


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (None, "PLATFORM_API_KEY is missing"),
        ("", "PLATFORM_API_KEY is empty"),
        ("x" * 31, "PLATFORM_API_KEY is shorter than 32 bytes"),
        (DEV_PLATFORM_API_KEY, "PLATFORM_API_KEY is a development default"),
    ],
)
def test_production_refuses_a_weak_platform_api_key(key: str | None, problem: str) -> None:
    values = {} if key is None else {"platform_api_key": key}

    with pytest.raises(ValueError, match=problem):
        production(supabase_jwt_secret=STRONG, **values)


def test_production_refuses_the_public_dev_jwt_secret() -> None:
    with pytest.raises(ValueError, match="SUPABASE_JWT_SECRET is a development default"):
        production(platform_api_key=STRONG, supabase_jwt_secret=DEV_SUPABASE_JWT_SECRET)


def test_production_refuses_to_start_with_no_way_to_verify_user_tokens() -> None:
    with pytest.raises(ValueError, match="SUPABASE_JWT_SECRET or SUPABASE_URL"):
        production(platform_api_key=STRONG)


def test_production_with_jwks_only_has_no_hs256_secret() -> None:
    settings = production(platform_api_key=STRONG, supabase_url="https://p.supabase.co")

    assert settings.supabase_jwt_secret is None


def test_load_exits_with_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV_MODE", "production")
    monkeypatch.setenv("SUPABASE_JWT_SECRET", STRONG)
    monkeypatch.setenv("PLATFORM_API_KEY", "short")

    with pytest.raises(SystemExit) as refused:
        ServiceSettings.load()

    message = str(refused.value.code)
    assert "PLATFORM_API_KEY is shorter than 32 bytes" in message
    assert "\n" not in message


def test_operator_commands_load_without_the_serving_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose's migrate one-shots run production with no secret at all: they answer no request.
    monkeypatch.setenv("ENV_MODE", "production")
    monkeypatch.delenv("SUPABASE_JWT_SECRET", raising=False)
    monkeypatch.delenv("PLATFORM_API_KEY", raising=False)

    assert ServiceSettings.load(serving=False).platform_api_key is None
    with pytest.raises(SystemExit, match="PLATFORM_API_KEY"):
        ServiceSettings.load()
