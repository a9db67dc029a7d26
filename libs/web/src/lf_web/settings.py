"""Settings every service shares, read from environment variables only.

Twelve-factor: a service's whole configuration is its environment, so there is no ``.env`` file to
drift between machines. ``ENV_MODE`` (``development`` | ``production``) decides what an unset value
means. In development the secrets have public dev defaults (``make token`` signs with the same dev
secret); in production nothing secret has a default: a secret a service needs that is missing,
empty, shorter than ``MIN_SECRET_BYTES`` or equal to a dev default refuses the start, with one line
naming the variable (``ServiceSettings.load``). Unset, ``ENV_MODE`` is ``production``: forgetting it
must fail closed (a refused start), never open (a forgeable token). ``make dev`` and the tests set
``development``.

A service subclasses this to add its own fields, to set its port and to name the secrets it needs
(``required_secrets``). Unknown keyword arguments are refused, so a typo in code fails loudly;
``version`` is only known by its env names (``ServiceSettings(PLATFORM_API_VERSION="1.2")``), so a
stray ``VERSION`` variable is never read.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import ClassVar, Literal, Self

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EnvMode = Literal["development", "production"]
# 32 bytes: the HMAC-SHA256 key size; anything shorter is within reach of a guess.
MIN_SECRET_BYTES = 32
# Public (in this repository, in every dev's shell): never a secret anywhere else.
DEV_SUPABASE_JWT_SECRET = "dev-supabase-jwt-secret-change-me-0123456789"
DEV_PLATFORM_API_KEY = "dev-platform-api-key"
DEV_SECRETS = frozenset({DEV_SUPABASE_JWT_SECRET, DEV_PLATFORM_API_KEY})


# Only a serving process needs the secrets: `migrate`, `projections rebuild` and `verify` run
# without them (compose's migrate one-shots are never given them). Set around construction by ``load``.
_SECRETS_CHECKED: ContextVar[bool] = ContextVar("secrets_checked", default=True)


class InsecureSettings(ValueError):
    """A production service would start with a missing or guessable secret."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="forbid")
    # Whether the service verifies lensers' tokens (then production needs a way to: a JWT secret
    # or a JWKS). A service without user routes sets False.
    verifies_user_tokens: ClassVar[bool] = True

    env_mode: EnvMode = "production"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/lenserfight"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    db_role: str | None = None
    db_owner_role: str | None = None  # migrate and rebuild SET ROLE to it (lf_pg.DatabaseAccess)
    migrate_database_url: str | None = None  # the owner's login for migrate and rebuild
    # HS256 is accepted only with a secret: set explicitly, or the dev one in development when no
    # JWKS is configured. A JWKS-only deployment (SUPABASE_URL alone) refuses HS256 tokens.
    supabase_jwt_secret: str | None = None
    supabase_url: str | None = None
    supabase_jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None  # Supabase: <SUPABASE_URL>/auth/v1; unset: not checked (dev tokens)
    platform_api_key: str | None = None  # development: DEV_PLATFORM_API_KEY
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    shutdown_timeout_seconds: float = 10
    version: str | None = Field(
        default=None, validation_alias=AliasChoices("PLATFORM_API_VERSION", "GIT_SHA")
    )

    @field_validator("supabase_jwt_secret", "supabase_url", "supabase_jwks_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker compose passes "${SUPABASE_URL:-}" as "": no key, no URL. Safe: an empty secret
        # verifies nothing either way, and production still needs one of them.
        return None if value == "" else value

    @property
    def development(self) -> bool:
        return self.env_mode == "development"

    @classmethod
    def load(cls, *, serving: bool = True) -> Self:
        """The settings from the environment, or exit with one line saying what is wrong.

        For ``__main__``: an operator reads which variable to set, not a pydantic traceback.
        ``serving=False`` (operator commands that answer no request) skips the secrets check.
        """
        token = _SECRETS_CHECKED.set(serving)
        try:
            return cls()
        except ValidationError as invalid:
            raise SystemExit(f"refusing to start: {_one_line(invalid)}") from None
        finally:
            _SECRETS_CHECKED.reset(token)

    @model_validator(mode="after")
    def _settle(self) -> Self:
        # Supabase publishes its signing keys at a fixed place under the project URL.
        if self.supabase_jwks_url is None and self.supabase_url:
            self.supabase_jwks_url = f"{self.supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json"
        self.apply_mode_defaults()
        if not self.development and _SECRETS_CHECKED.get():
            self.refuse_insecure_secrets()
        return self

    def apply_mode_defaults(self) -> None:
        """Fill what ENV_MODE decides when unset; subclasses add theirs (calling this one)."""
        if not self.development:
            return  # no secret has a default outside development
        if self.supabase_jwt_secret is None and self.supabase_jwks_url is None:
            self.supabase_jwt_secret = DEV_SUPABASE_JWT_SECRET
        if self.platform_api_key is None:
            self.platform_api_key = DEV_PLATFORM_API_KEY

    def refuse_insecure_secrets(self) -> None:
        problems = [
            f"{name} {problem}"
            for name, value in self.required_secrets().items()
            if (problem := _weakness(value, self.dev_secrets())) is not None
        ]
        if self.verifies_user_tokens and self.supabase_jwt_secret is None and self.supabase_jwks_url is None:
            problems.append("SUPABASE_JWT_SECRET or SUPABASE_URL must be set (no way to verify user tokens)")
        if problems:
            raise InsecureSettings(f"ENV_MODE={self.env_mode}: " + "; ".join(problems))

    def required_secrets(self) -> dict[str, str | None]:
        """The secrets this service needs in production, by variable name; subclasses add theirs."""
        secrets = {"PLATFORM_API_KEY": self.platform_api_key}
        if self.supabase_jwt_secret is not None:  # HS256 in use
            secrets["SUPABASE_JWT_SECRET"] = self.supabase_jwt_secret
        return secrets

    def dev_secrets(self) -> frozenset[str]:
        """Values that are public: a subclass adds its own dev defaults."""
        return DEV_SECRETS


def _weakness(value: str | None, dev_secrets: frozenset[str]) -> str | None:
    if value is None:
        return "is missing"
    if not value:
        return "is empty"
    if value in dev_secrets:
        return "is a development default"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def _one_line(invalid: ValidationError) -> str:
    messages = []
    for error in invalid.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError):
            messages.append(str(cause))
        else:
            where = ".".join(str(part) for part in error["loc"]).upper()
            messages.append(f"{where}: {error['msg']}")
    return "; ".join(messages)
