from pydantic import Field

from billing_webhook.application.processor import DEFAULT_CONCURRENCY
from lf_web import ServiceSettings

DEV_LEMONSQUEEZY_WEBHOOK_SECRET = "dev-lemonsqueezy-webhook-secret"


class BillingSettings(ServiceSettings):
    verifies_user_tokens = False  # LemonSqueezy's signatures and the platform key, no user tokens
    port: int = 8103
    # Signs deliveries: whoever knows it can mint credits (POST /wallet/checkout tells a buyer its
    # session id). development: DEV_LEMONSQUEEZY_WEBHOOK_SECRET; production: required.
    lemonsqueezy_webhook_secret: str | None = None
    lemonsqueezy_api_url: str = "https://api.lemonsqueezy.com"
    # production: required (checkouts are created at LemonSqueezy); development: the fake takes any.
    lemonsqueezy_api_key: str = ""
    lemonsqueezy_store_id: str = "1"
    lemonsqueezy_timeout_seconds: float = 10
    checkout_redirect_url: str | None = None
    checkout_session_ttl_seconds: int = 86400
    checkout_expiry_interval_seconds: float = 60
    # The dev catalogue is test mode: production defines its packs itself. Unset: development only.
    seed_credit_packs: bool | None = None
    # Buyers' personal data (email, name, address) in delivery payloads is redacted after this many
    # days: long enough to answer a dispute about the order, no longer.
    delivery_personal_data_retention_days: int = 30
    # Deliveries of different orders / subscriptions processed at once, each on a pool connection
    # (the pool has 10): more overlaps more round trips, but takes connections from the webhook.
    delivery_concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=8)

    def apply_mode_defaults(self) -> None:
        super().apply_mode_defaults()
        if self.seed_credit_packs is None:
            self.seed_credit_packs = self.development
        if self.development and self.lemonsqueezy_webhook_secret is None:
            self.lemonsqueezy_webhook_secret = DEV_LEMONSQUEEZY_WEBHOOK_SECRET

    def required_secrets(self) -> dict[str, str | None]:
        return {
            **super().required_secrets(),
            "LEMONSQUEEZY_WEBHOOK_SECRET": self.lemonsqueezy_webhook_secret,
            "LEMONSQUEEZY_API_KEY": self.lemonsqueezy_api_key,
        }

    def dev_secrets(self) -> frozenset[str]:
        return super().dev_secrets() | {DEV_LEMONSQUEEZY_WEBHOOK_SECRET}
