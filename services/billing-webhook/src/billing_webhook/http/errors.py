"""Billing's refusals, as codes of the catalogue."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from billing_webhook.domain import errors
from lf_contracts import errors as codes
from lf_contracts.errors import ApiError

CODES: dict[type[errors.BillingError], codes.ErrorCode] = {
    errors.VariantNotFound: codes.BILLING_VARIANT_NOT_FOUND,
    errors.SessionNotFound: codes.WEBHOOK_SESSION_NOT_FOUND,
    errors.InvalidCreditPack: codes.VALIDATION_ERROR,
}


@web.middleware
async def billing_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.BillingError as refusal:
        raise ApiError(CODES[type(refusal)], str(refusal) or None) from None
