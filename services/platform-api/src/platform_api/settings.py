from uuid import UUID

from pydantic import Field, field_validator

from lf_web import ServiceSettings
from lf_web.sealing import checked_master_key, checked_previous_master_keys

# Public: a 32-byte key in base64, for development only (partner tokens stored under it are readable
# by anyone with this repository, which is what development means).
DEV_PARTNER_TOKEN_MASTER_KEY = "ZGV2LXBhcnRuZXItdG9rZW4ta2V5LWNoYW5nZS1tZS0="


class PlatformSettings(ServiceSettings):
    """platform-api's settings. Its secrets are the kit's (``PLATFORM_API_KEY``, the JWT secret or
    JWKS) and, once partners are switched on (``CHAINABIT_API_URL`` set), the partner's key and the
    master key of partner tokens: none has a working default outside ``ENV_MODE=development``.
    ``PLATFORM_API_KEY`` is also what run workers send execution-proxy (``X-Platform-Api-Key``)."""

    port: int = 8787
    execution_proxy_url: str = "http://127.0.0.1:8102"
    run_worker_prefetch: int = 16
    """Node attempts one process executes at once (the work queue's prefetch)."""
    node_timeout_seconds: float = 300.0
    """Longest wait for one node's execution (a run's deadline may cut it shorter)."""
    default_provider: str = "local"
    """execution-proxy provider for a model whose name says none and no ``providerOverride``."""
    sponsor_id: UUID | None = None
    """Who pays for ``fundingSource: sponsored`` runs; without it their nodes fail."""
    node_delta_interval_ms: int = Field(default=250, gt=0)
    """A running node's text is recorded (``node.stream.delta``) at most once per this long."""
    cancel_grace_seconds: float = Field(default=30.0, gt=0)
    """How long a run stopping mid-node (cancel, deadline) waits for its running nodes' workers to
    report their charge before the deadline sweep ends it without (``credits: null``)."""

    # Partners (Chainabit). Unset URL: the partner routes answer 503 partner.unavailable.
    chainabit_api_url: str | None = None
    chainabit_partner_api_key: str = ""
    chainabit_timeout_seconds: float = Field(default=10.0, gt=0)
    # What every new Chainabit account starts with, and the scopes of its tokens: the platform's
    # choice, never the lenser's (a lenser choosing their own starter credits would mint them).
    chainabit_starter_credits: int = Field(default=0, ge=0)
    chainabit_token_scopes: str = "balance:read,claims:write"
    # Envelope encryption of partner tokens at rest (lf_web.sealing): base64 of 32 bytes, and while
    # rotating the previous keys (comma-separated) that still open tokens sealed under them.
    partner_token_master_key: str | None = None
    partner_token_previous_master_keys: str = ""

    @field_validator("partner_token_master_key")
    @classmethod
    def _master_key_is_32_bytes(cls, value: str | None) -> str | None:
        return checked_master_key(value, "PARTNER_TOKEN_MASTER_KEY")

    @field_validator("partner_token_previous_master_keys")
    @classmethod
    def _previous_master_keys_are_32_bytes(cls, value: str) -> str:
        return checked_previous_master_keys(value, "PARTNER_TOKEN_PREVIOUS_MASTER_KEYS")

    @property
    def token_scopes(self) -> list[str]:
        return [scope.strip() for scope in self.chainabit_token_scopes.split(",") if scope.strip()]

    def apply_mode_defaults(self) -> None:
        super().apply_mode_defaults()
        if self.development and self.partner_token_master_key is None:
            self.partner_token_master_key = DEV_PARTNER_TOKEN_MASTER_KEY

    def required_secrets(self) -> dict[str, str | None]:
        secrets = super().required_secrets()
        if self.chainabit_api_url:  # partners switched on: their secrets are needed
            secrets["CHAINABIT_PARTNER_API_KEY"] = self.chainabit_partner_api_key
            secrets["PARTNER_TOKEN_MASTER_KEY"] = self.partner_token_master_key
        return secrets

    def dev_secrets(self) -> frozenset[str]:
        return super().dev_secrets() | {DEV_PARTNER_TOKEN_MASTER_KEY}

    # Live run events (GET /v1/runs/{runId}/events).
    sse_max_connections: int = 5000
    """Event streams one process serves at once; past it, new streams get 503 ``run_events.busy``."""
    sse_keepalive_seconds: float = 15.0
    """A ``: keep-alive`` comment after this long without a frame (seed 001: 15 s)."""
    sse_client_buffer_events: int = 256
    """Events waiting for one slow client; a client further behind is disconnected (it resumes)."""
    sse_retry_after_seconds: int = 5
    run_events_replay_limit: int = 10_000
    """How many of a run's most recent events a stream (re)plays; a cursor older gets ``gap``."""
    run_events_poll_seconds: float = 1.0
    """The listener's fallback poll, should a wake-up be lost."""
