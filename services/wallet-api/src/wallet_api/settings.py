from lf_web import ServiceSettings


class WalletSettings(ServiceSettings):
    port: int = 8101
    billing_webhook_url: str = "http://127.0.0.1:8103"
    reservation_ttl_seconds: int = 300
    # However often it is extended (and whatever ttl it asks), a reservation expires at the latest
    # this long after it was made.
    reservation_max_lifetime_seconds: int = 3600
    expiry_interval_seconds: float = 1.0
    billing_timeout_seconds: float = 10.0
    # Credit a purchase LemonSqueezy made in test mode (no money moved)? Unset: development only.
    # A refused one is recorded on the wallet (TestModePurchaseRefused), never silently dropped.
    accept_test_mode_payments: bool | None = None

    def apply_mode_defaults(self) -> None:
        super().apply_mode_defaults()
        if self.accept_test_mode_payments is None:
            self.accept_test_mode_payments = self.development
