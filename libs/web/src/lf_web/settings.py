"""Settings every service shares, read from environment variables only.

Twelve-factor: a service's whole configuration is its environment, so there is no ``.env`` file to
drift between machines. Defaults suit a developer's machine (``make token`` signs with the same dev
secret). A service subclasses this to add its own fields and to set its port. Unknown keyword
arguments are refused, so a typo in code fails loudly; ``version`` is only known by its env names
(``ServiceSettings(PLATFORM_API_VERSION="1.2")``), so a stray ``VERSION`` variable is never read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="forbid")

    env_mode: Literal["development", "production"] = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/lenserfight"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    db_role: str | None = None
    supabase_jwt_secret: str = "dev-supabase-jwt-secret-change-me-0123456789"
    supabase_url: str | None = None
    supabase_jwks_url: str | None = None
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None  # Supabase: <SUPABASE_URL>/auth/v1; unset: not checked (dev tokens)
    platform_api_key: str = "dev-platform-api-key"
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    shutdown_timeout_seconds: float = 10
    version: str | None = Field(
        default=None, validation_alias=AliasChoices("PLATFORM_API_VERSION", "GIT_SHA")
    )

    @model_validator(mode="after")
    def _derive_jwks_url(self) -> ServiceSettings:
        # Supabase publishes its signing keys at a fixed place under the project URL.
        if self.supabase_jwks_url is None and self.supabase_url:
            self.supabase_jwks_url = f"{self.supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json"
        return self
