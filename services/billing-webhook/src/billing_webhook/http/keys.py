from aiohttp import web

from billing_webhook.adapters.lemonsqueezy import LemonSqueezyClient
from billing_webhook.application.billing import Billing
from billing_webhook.settings import BillingSettings

BILLING = web.AppKey("billing", Billing)
LEMONSQUEEZY = web.AppKey("lemonsqueezy", LemonSqueezyClient)
BILLING_SETTINGS = web.AppKey("billing_settings", BillingSettings)
