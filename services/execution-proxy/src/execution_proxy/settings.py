from pydantic import field_validator

from lf_web import ServiceSettings
from lf_web.sealing import checked_master_key, checked_previous_master_keys

# Public: a 32-byte key in base64, for development only (stored BYOK keys are then readable by anyone
# with this repository, which is what development means).
DEV_BYOK_MASTER_KEY = "ZGV2LWJ5b2stbWFzdGVyLWtleS1jaGFuZ2UtbWUtMDE="


class ExecutionSettings(ServiceSettings):
    port: int = 8102
    wallet_api_url: str = "http://127.0.0.1:8101"
    wallet_timeout_seconds: float = 5.0

    # Providers: a base URL each, and the platform's key where the provider needs one. A provider
    # without a platform key is refused on credit routes (execute.unsupported_provider); BYOK works.
    anthropic_api_url: str = "https://api.anthropic.com"
    anthropic_api_key: str = ""
    anthropic_version: str = "2023-06-01"
    openai_api_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    gemini_api_url: str = "https://generativelanguage.googleapis.com"
    gemini_api_key: str = ""
    fal_api_url: str = "https://fal.run"
    fal_api_key: str = ""
    fal_timeout_seconds: float = 90.0
    ollama_url: str = "http://127.0.0.1:11434"
    provider_timeout_seconds: float = 120.0
    """A buffered call's whole answer; a stream's wait for its next chunk."""
    provider_retries: int = 2
    """Transient failures (429, 5xx, a reset connection) retried before the first token."""
    provider_max_retry_after_seconds: float = 10.0
    local_token_delay_ms: float = 0.0
    """The built-in ``local`` provider's pace when streaming (make dev sets a visible one)."""

    # Reservations: held for a TTL and kept alive by a long stream every half of it; the wallet
    # caps a reservation's whole life (its RESERVATION_MAX_LIFETIME_SECONDS).
    reservation_ttl_seconds: int = 300
    credits_per_usd: int = 100

    # Cancels of detached executions (internal streams with a referenceId): how long the cancel
    # route waits for the stopped execution's record, and how often a replica running detached
    # executions looks for cancels when no NOTIFY woke it.
    cancel_wait_seconds: float = 5.0
    cancel_check_seconds: float = 0.25
    # How often a replica running detached executions says it still does (their owner's heartbeat);
    # one silent for three of them is taken for dead and its executions may be taken over.
    execution_heartbeat_seconds: float = 2.0

    # Envelope encryption of stored BYOK keys: the current master key (base64 of 32 bytes) and, while
    # rotating, the previous ones (comma-separated) that still unwrap keys not yet re-wrapped.
    byok_master_key: str | None = None
    byok_previous_master_keys: str = ""
    # How long a replica remembers a resolved key: a key revoked on another replica keeps working
    # here for at most this long (0: resolve on every request).
    byok_key_cache_seconds: float = 5.0

    # The development catalogue (models and list prices); unset: development only.
    seed_catalogue: bool | None = None

    @field_validator("byok_master_key")
    @classmethod
    def _master_key_is_32_bytes(cls, value: str | None) -> str | None:
        return checked_master_key(value, "BYOK_MASTER_KEY")

    @field_validator("byok_previous_master_keys")
    @classmethod
    def _previous_master_keys_are_32_bytes(cls, value: str) -> str:
        return checked_previous_master_keys(value, "BYOK_PREVIOUS_MASTER_KEYS")

    def apply_mode_defaults(self) -> None:
        super().apply_mode_defaults()
        if self.seed_catalogue is None:
            self.seed_catalogue = self.development
        if self.development and self.byok_master_key is None:
            self.byok_master_key = DEV_BYOK_MASTER_KEY

    def required_secrets(self) -> dict[str, str | None]:
        return {**super().required_secrets(), "BYOK_MASTER_KEY": self.byok_master_key}

    def dev_secrets(self) -> frozenset[str]:
        return super().dev_secrets() | {DEV_BYOK_MASTER_KEY}
