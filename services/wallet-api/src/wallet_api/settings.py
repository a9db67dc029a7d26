from lf_web import ServiceSettings


class WalletSettings(ServiceSettings):
    port: int = 8101
    billing_webhook_url: str = "http://127.0.0.1:8103"
    reservation_ttl_seconds: int = 300
    expiry_interval_seconds: float = 1.0
    billing_timeout_seconds: float = 10.0
