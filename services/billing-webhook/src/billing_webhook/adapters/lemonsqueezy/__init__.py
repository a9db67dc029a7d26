"""LemonSqueezy, as billing meets it: its API (``client``), its webhook deliveries' wire format
(``payloads``) and their signatures (``signatures``). Nothing outside this package knows
LemonSqueezy's JSON."""

from billing_webhook.adapters.lemonsqueezy.client import Checkout, CheckoutRequest, LemonSqueezyClient

__all__ = ["Checkout", "CheckoutRequest", "LemonSqueezyClient"]
