from datetime import timedelta

from aiohttp import web

from lf_web import RateLimiter
from wallet_api.adapters.billing import BillingClient
from wallet_api.application.use_cases import Wallets

WALLETS = web.AppKey("wallets", Wallets)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
BILLING = web.AppKey("billing", BillingClient)
RESERVATION_TTL = web.AppKey("reservation_ttl", timedelta)
