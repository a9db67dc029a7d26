"""Billing's refusals, as codes of the catalogue (answered by ``lf_web``'s error middleware)."""

from __future__ import annotations

from billing_webhook.domain import errors
from lf_contracts import errors as codes
from lf_web import Refusals

CODES: Refusals = {
    errors.VariantNotFound: codes.BILLING_VARIANT_NOT_FOUND,
    errors.SessionNotFound: codes.WEBHOOK_SESSION_NOT_FOUND,
    errors.InvalidCreditPack: codes.VALIDATION_ERROR,
}
