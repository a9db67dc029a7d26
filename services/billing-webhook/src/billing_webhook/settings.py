from lf_web import ServiceSettings


class BillingSettings(ServiceSettings):
    port: int = 8103
    lemonsqueezy_webhook_secret: str = "dev-lemonsqueezy-webhook-secret"
    lemonsqueezy_api_url: str = "https://api.lemonsqueezy.com"
    lemonsqueezy_api_key: str = ""
    lemonsqueezy_store_id: str = "1"
    lemonsqueezy_timeout_seconds: float = 10
    checkout_redirect_url: str | None = None
    checkout_session_ttl_seconds: int = 86400
    checkout_expiry_interval_seconds: float = 60
    seed_credit_packs: bool = True
