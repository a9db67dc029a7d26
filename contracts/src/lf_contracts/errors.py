"""The error catalogue of seed 000, defined once.

Every error a service answers with is one of these codes. The HTTP status belongs to the code,
so a handler raises ``ApiError(WALLET_NOT_FOUND)`` and never picks a status by hand.
Codes marked "ours" extend the seed for situations it leaves open; docs/errors.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    message: str


CATALOGUE: dict[str, ErrorCode] = {}


def _code(code: str, status: int, message: str) -> ErrorCode:
    entry = ErrorCode(code, status, message)
    CATALOGUE[code] = entry
    return entry


AUTH_MISSING_TOKEN = _code("auth.missing_token", 401, "No Authorization header or not Bearer format")
AUTH_INVALID_TOKEN = _code("auth.invalid_token", 401, "JWT expired, malformed, or sub claim missing")
AUTH_PROFILE_NOT_FOUND = _code("auth.profile_not_found", 404, "JWT valid but lenser profile not found")
AUTH_UNAUTHORIZED = _code("auth.unauthorized", 401, "Missing or invalid X-Platform-Api-Key")
VALIDATION_ERROR = _code("validation_error", 400, "Request body or query failed schema validation")
NOT_FOUND = _code("not_found", 404, "No route matched the request path")
METHOD_NOT_ALLOWED = _code("method_not_allowed", 405, "The route does not accept this method")  # ours
RATE_LIMITED = _code("rate_limited", 429, "Too many requests; retry after the given delay")  # ours
UPSTREAM_UNAVAILABLE = _code(  # ours; the gateway's alone (infra/gateway), also as 503 and 504
    "upstream_unavailable", 502, "The service for this path is not running or did not answer"
)
WALLET_NOT_FOUND = _code("wallet.not_found", 404, "Wallet account not found for this lenser")
WALLET_INSUFFICIENT_BALANCE = _code(
    "wallet.insufficient_balance", 402, "Not enough credits to complete the operation"
)
WALLET_ACCOUNT_FROZEN = _code("wallet.account_frozen", 403, "Account suspended by admin")
WALLET_SPENDING_LIMIT_EXCEEDED = _code(
    "wallet.spending_limit_exceeded", 429, "Daily or monthly spend cap reached"
)
WALLET_INVALID_AMOUNT = _code("wallet.invalid_amount", 400, "Amount is invalid (e.g. zero or negative)")
WALLET_RESERVATION_FAILED = _code(
    "wallet.reservation_failed", 503, "Wallet service unavailable during reservation"
)
WALLET_RESERVATION_NOT_FOUND = _code(  # ours
    "wallet.reservation_not_found", 404, "Reservation not found"
)
WALLET_RESERVATION_CLOSED = _code(  # ours
    "wallet.reservation_closed", 409, "Reservation was already released or expired"
)
WALLET_IDEMPOTENCY_CONFLICT = _code(  # ours
    "wallet.idempotency_conflict", 409, "The key was already used for a different request"
)
PRICING_NOT_FOUND = _code("pricing.not_found", 404, "No pricing configured for this model")
EXECUTE_MODEL_NOT_FOUND = _code("execute.model_not_found", 404, "Model not in catalog or not active")
EXECUTE_PRICING_FAILED = _code("execute.pricing_failed", 500, "Credit cost calculation failed")
EXECUTE_INVALID_MESSAGES = _code("execute.invalid_messages", 400, "Messages array failed sanitization")
EXECUTE_UNSUPPORTED_PROVIDER = _code(
    "execute.unsupported_provider", 400, "Provider has no platform key configured"
)
EXECUTE_PROVIDER_FAILED = _code("execute.provider_failed", 502, "AI provider returned an error")
EXECUTE_PROVIDER_MISMATCH = _code(
    "execute.provider_mismatch", 400, "Requested provider doesn't match BYOK key's provider"
)
EXECUTE_KEY_RESOLUTION_FAILED = _code(
    "execute.key_resolution_failed", 403, "BYOK key not found or not owned by this user"
)
EXECUTE_CANCELLED = _code(  # ours (execution-proxy's /internal/executions)
    "execute.cancelled", 409, "The execution was cancelled before it started"
)
EXECUTE_RUNNING_ELSEWHERE = _code(  # ours (execution-proxy's /internal/executions)
    "execute.running_elsewhere", 409, "The execution of this referenceId runs on another replica: ask again"
)
BILLING_VARIANT_NOT_FOUND = _code(
    "billing.variant_not_found", 404, "LemonSqueezy variant not found in billing schema"
)
BILLING_SESSION_FAILED = _code("billing.session_failed", 500, "Failed to create checkout session")
BILLING_UPSTREAM_ERROR = _code("billing.upstream_error", 502, "LemonSqueezy API returned an error")
WEBHOOK_INVALID_SIGNATURE = _code("webhook.invalid_signature", 401, "HMAC signature mismatch")
WEBHOOK_INVALID_JSON = _code("webhook.invalid_json", 400, "Webhook body is not valid JSON")
WEBHOOK_MISSING_SESSION = _code("webhook.missing_session", 400, "session_id not present in custom_data")
WEBHOOK_SESSION_NOT_FOUND = _code("webhook.session_not_found", 404, "Checkout session not found")
WEBHOOK_PROCESSING_FAILED = _code(
    "webhook.processing_failed", 500, "Webhook handler threw an unexpected error"
)
LENS_NOT_FOUND = _code(  # ours (platform-api)
    "lens.not_found", 404, "Lens not found, or another lenser's that is not published"
)
WORKFLOW_NOT_FOUND = _code(  # ours (platform-api)
    "workflow.not_found", 404, "Workflow not found, or another lenser's that is not published"
)
PARTNER_NOT_FOUND = _code("partner.not_found", 404, "No partner integration of this name")  # ours
PARTNER_NOT_PROVISIONED = _code(  # ours (platform-api)
    "partner.not_provisioned", 404, "The lenser has no provisioning record with this partner yet"
)
PARTNER_INVALID_REQUEST = _code(  # ours (platform-api)
    "partner.invalid_request", 400, "The partner refused the request's content"
)
PARTNER_REFUSED = _code(  # ours (platform-api)
    "partner.refused", 502, "The partner refused the platform's call (its key or the record it names)"
)
PARTNER_BAD_RESPONSE = _code(  # ours (platform-api)
    "partner.bad_response", 502, "The partner answered something the platform cannot use"
)
PARTNER_UNAVAILABLE = _code(  # ours (platform-api)
    "partner.unavailable", 503, "The partner did not answer, failed, or is not configured; retry later"
)
RUN_NOT_FOUND = _code(  # ours (platform-api)
    "run.not_found", 404, "Run not found, or another lenser's"
)
RUN_EVENTS_BUSY = _code(  # ours (platform-api)
    "run_events.busy", 503, "This server streams as many run events as it may; retry after the given delay"
)
RUN_IDEMPOTENCY_CONFLICT = _code(  # ours (platform-api)
    "run.idempotency_conflict",
    409,
    "This idempotencyKey was used within 24 hours for a different run request",
)
LIGHTNING_JOB_NOT_FOUND = _code("lightning.job_not_found", 404, "Job not found")  # ours (lightning-jobs)
LIGHTNING_INVALID_INVOICE = _code(  # ours (lightning-jobs)
    "lightning.invalid_invoice", 400, "Wrong amount, or not a BOLT11 invoice this service can pay"
)
LIGHTNING_REFUND_CONFLICT = _code(  # ours (lightning-jobs)
    "lightning.refund_conflict", 409, "Job not complete, no refund owed, or the refund is paid or being paid"
)
LIGHTNING_PAYMENT_FAILED = _code(  # ours (lightning-jobs)
    "lightning.payment_failed", 500, "The Lightning payment failed or its outcome is not known yet"
)
LIGHTNING_INVOICE_NOT_FOUND = _code(  # ours (lightning-jobs, development only)
    "lightning.invoice_not_found", 404, "No stub invoice with this payment hash"
)
LIGHTNING_SESSION_NOT_FOUND = _code(  # ours (lightning-jobs)
    "lightning.session_not_found", 404, "Session not found"
)
LIGHTNING_INVALID_MACAROON = _code(  # ours (lightning-jobs)
    "lightning.invalid_macaroon", 401, "Missing, tampered, foreign or expired session macaroon"
)
LIGHTNING_INSUFFICIENT_BALANCE = _code(  # ours (lightning-jobs)
    "lightning.insufficient_balance", 402, "The session balance cannot cover this request"
)
LIGHTNING_SESSION_NOT_ACTIVE = _code(  # ours (lightning-jobs)
    "lightning.session_not_active", 409, "Session not active, or a top-up is pending already"
)
LIGHTNING_SESSION_EXPIRED = _code(  # ours (lightning-jobs)
    "lightning.session_expired", 410, "Session expired"
)
LIGHTNING_CONVERSATION_NOT_FOUND = _code(  # ours (lightning-jobs, seed 002's Gemini routes)
    "lightning.conversation_not_found", 404, "Conversation not found"
)
LIGHTNING_PAYMENT_REQUIRED = _code(  # ours (lightning-jobs, L402)
    "lightning.payment_required", 402, "Pay the invoice of the L402 challenge, then present the token"
)
LIGHTNING_INVALID_PAYMENT_TOKEN = _code(  # ours (lightning-jobs, L402)
    "lightning.invalid_payment_token",
    401,
    "The L402 token is malformed, tampered, expired, for another request, or its preimage is wrong",
)
LIGHTNING_PAYMENT_TOKEN_USED = _code(  # ours (lightning-jobs, L402)
    "lightning.payment_token_used", 409, "This L402 token is being used"
)
LIGHTNING_IMAGE_GENERATION_FAILED = _code(  # ours (lightning-jobs, seed 002's Gemini image route)
    "lightning.image_generation_failed", 502, "Image generation failed"
)
INTERNAL_ERROR = _code("internal_error", 500, "Unhandled server error")


class ApiError(Exception):
    """Raised anywhere below an HTTP route; the web kit turns it into the envelope."""

    def __init__(
        self,
        error: ErrorCode,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or error.message)
        self.error = error
        self.message = message or error.message
        self.details = details
        self.headers = headers or {}
