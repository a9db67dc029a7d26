from decimal import Decimal
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from lf_web import ServiceSettings
from lf_web.settings import DEV_SECRETS
from lightning_jobs.adapters.price_oracle import DEFAULT_BTC_PRICE_URL, DEFAULT_FALLBACK_USD

# Public (in this repository): development only; production refuses it like any dev secret.
DEV_MACAROON_ROOT_KEY = "dev-macaroon-root-key-change-me-0123456789abcdef"


class LightningSettings(ServiceSettings):
    """lightning-jobs' settings. It verifies no lenser's token (seed 002's clients pay, they do not
    sign in); its secrets are ``PLATFORM_API_KEY``, which it sends execution-proxy, and with
    ``LIGHTNING_BACKEND=lnbits`` LNbits' invoice and admin keys."""

    verifies_user_tokens: ClassVar[bool] = False

    @model_validator(mode="after")
    def _lnbits_is_configured(self) -> Self:
        # No defaults for LNbits in any mode: a guessed URL or key would issue invoices nobody can
        # pay, or pay refunds from the wrong wallet.
        if self.lightning_backend == "lnbits":
            missing = [
                name
                for name, value in (
                    ("LNBITS_URL", self.lnbits_url),
                    ("LNBITS_INVOICE_KEY", self.lnbits_invoice_key),
                    ("LNBITS_ADMIN_KEY", self.lnbits_admin_key),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"LIGHTNING_BACKEND=lnbits needs {', '.join(missing)}")
        return self

    def apply_mode_defaults(self) -> None:
        super().apply_mode_defaults()
        if self.development and self.macaroon_root_key is None:
            self.macaroon_root_key = DEV_MACAROON_ROOT_KEY

    def dev_secrets(self) -> frozenset[str]:
        return DEV_SECRETS | {DEV_MACAROON_ROOT_KEY}

    def required_secrets(self) -> dict[str, str | None]:
        secrets = super().required_secrets()
        # Signs every session's macaroon: a guessable one lets anyone spend any session's balance.
        secrets["MACAROON_ROOT_KEY"] = self.macaroon_root_key
        if self.lightning_backend == "lnbits":
            secrets["LNBITS_INVOICE_KEY"] = self.lnbits_invoice_key
            secrets["LNBITS_ADMIN_KEY"] = self.lnbits_admin_key
        return secrets

    port: int = 8104
    lightning_backend: Literal["stub", "lnbits"] = "stub"
    """Where invoices are issued and refunds paid: ``stub`` (in this service's database, paid through
    ``POST /api/dev/stub/pay/{paymentHash}`` outside production) or ``lnbits`` (its HTTP API)."""
    lnbits_url: str | None = None
    lnbits_invoice_key: str | None = None
    """Creates and checks invoices."""
    lnbits_admin_key: str | None = None
    """Pays refunds (and looks up a refund whose outcome is unknown)."""
    lnbits_timeout_seconds: float = Field(default=10.0, gt=0)
    lnbits_pay_timeout_seconds: float = Field(default=60.0, gt=0)
    """Paying a refund; past it the outcome is unknown and is looked up before any retry."""
    lnbits_webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    """Our public URL of ``POST /api/lnbits/webhook`` (through the gateway). Set, every invoice is
    created with it as LNbits' ``webhook``: LNbits pushes the payment the moment it is paid (checked
    with LNbits before anything moves). Unset, the watcher's reconciliation poll alone notices
    payments; it stays the fallback either way (LNbits sends a webhook once, never again)."""
    lightning_network: Literal["bc", "tb", "tbs", "bcrt"] = "bc"
    """The network a refund invoice must be for (checked with ``LIGHTNING_BACKEND=lnbits``)."""

    execution_proxy_url: str = "http://127.0.0.1:8102"
    eval_model: str = "local-small"
    work_model: str = "local-small"
    default_provider: str = "local"
    """execution-proxy provider for a model whose name says none."""
    ai_timeout_seconds: float = Field(default=120.0, gt=0)

    gemini_model: str = "gemini-3-flash-preview"
    """The Gemini routes' model (execution-proxy's ``gemini`` provider) when a message names none."""
    gemini_image_model: str = "gemini-2.5-flash-image"
    """``POST /api/gemini/generate-image``'s model: a Gemini image model of execution-proxy's catalogue
    (seed 002 names none; ``gemini-2.5-flash-image`` is the one its clients' Gemini integration used)."""

    eval_fee_sats: int = Field(default=10, ge=1)
    # The work fee's token rates, infra share and margin are ``domain.pricing.PricingConfig``'s,
    # read from the environment by ``PricingConfig.from_env`` (its ``ENV_NAMES``), not copied here.
    btc_price_url: str = DEFAULT_BTC_PRICE_URL
    """A CoinGecko-compatible ``simple/price`` URL: the BTC price the work invoice is locked at."""
    btc_price_cache_seconds: float = Field(default=60.0, ge=0)
    btc_price_timeout_seconds: float = Field(default=5.0, gt=0)
    btc_price_usd_fallback: Decimal = Field(default=DEFAULT_FALLBACK_USD, gt=0)
    """The BTC price when the oracle has no usable answer (the job then says ``fallback``)."""

    trusted_proxies: str = "127.0.0.1"
    """Comma-separated addresses or CIDR networks of the gateway: only a request whose peer is one of
    them has its client IP taken from ``X-Real-IP`` (else the last ``X-Forwarded-For`` hop); any other
    request's client is its peer address. In a deployment, the gateway's address(es)."""
    demo_limit_per_hour: int = Field(default=5, ge=1)
    """``GET /api/demo`` requests per client IP per hour (seed 002: 5), shared by every replica."""
    gemini_limit_per_hour: int = Field(default=60, ge=1)
    """Gemini messages sent plus images generated per client IP per hour, shared by every replica
    (ours: seed 002 sets no limit, but the service's Gemini account pays for each)."""

    step_lease_seconds: float = Field(default=300.0, gt=0)
    """How long a claimed evaluation or work step is its claimant's; past it (the claimant died) the
    next poller or the watcher claims it again. Longer than ``AI_TIMEOUT_SECONDS``."""
    watch_interval_seconds: float = Field(default=2.0, gt=0)
    """How often the watcher looks at the jobs waiting on an invoice or on a lapsed step."""
    refund_recheck_seconds: float = Field(default=60.0, gt=0)
    """How long a refund claim may stay neither paid nor released before the watcher asks the backend
    what became of its payment (a crash between paying and recording it); longer than a payment takes."""

    macaroon_root_key: str | None = None
    """Signs session macaroons (development: a public dev key; production: required, no default)."""
    macaroon_ttl_seconds: float = Field(default=86_400.0, gt=0)
    """How long a macaroon handed out by ``GET /api/sessions/{id}``, or an L402 challenge's, is good
    for (its expiry caveat)."""
    session_idle_seconds: float = Field(default=86_400.0, gt=0)
    """A session with no activity for this long expires; its balance is owed back."""
