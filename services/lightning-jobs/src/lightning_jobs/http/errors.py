"""lightning-jobs' refusals as catalogue codes, answered in seed 002's shape ``{error: "..."}``
(``error_body``: lf_web's ``error_shape``) with the code's status."""

from __future__ import annotations

from lf_contracts import errors as codes
from lf_contracts.errors import ApiError
from lf_web import Refusals
from lightning_jobs.domain import errors

CODES: Refusals = {
    errors.JobNotFound: codes.LIGHTNING_JOB_NOT_FOUND,
    errors.RefundNotClaimable: codes.LIGHTNING_REFUND_CONFLICT,
    errors.InvalidRefundInvoice: codes.LIGHTNING_INVALID_INVOICE,
    errors.RefundPaymentFailed: codes.LIGHTNING_PAYMENT_FAILED,
    errors.StubInvoiceNotFound: codes.LIGHTNING_INVOICE_NOT_FOUND,
    errors.SessionNotFound: codes.LIGHTNING_SESSION_NOT_FOUND,
    errors.InvalidMacaroon: codes.LIGHTNING_INVALID_MACAROON,
    errors.InsufficientBalance: codes.LIGHTNING_INSUFFICIENT_BALANCE,
    errors.SessionNotActive: codes.LIGHTNING_SESSION_NOT_ACTIVE,
    errors.TopupRefused: codes.LIGHTNING_SESSION_NOT_ACTIVE,
    errors.SessionExpiredError: codes.LIGHTNING_SESSION_EXPIRED,
    errors.InvalidL402Token: codes.LIGHTNING_INVALID_PAYMENT_TOKEN,
    errors.L402TokenUsed: codes.LIGHTNING_PAYMENT_TOKEN_USED,
}


def error_body(error: ApiError) -> dict[str, object]:
    """Seed 002's ``ErrorResponse``: one string. A validation error names its fields in it."""
    fields = (error.details or {}).get("fields") if isinstance(error.details, dict) else None
    if fields:
        named = "; ".join(f"{field['field']}: {field['message']}" for field in fields)
        return {"error": f"{error.message} ({named})"}
    return {"error": error.message}
