"""lightning-jobs' refusals: one base class, each answered with its catalogue code (http/errors.py)
in seed 002's ``{error: "..."}`` shape."""


class JobError(Exception):
    pass


class JobNotFound(JobError):
    def __init__(self) -> None:
        super().__init__("Job not found")


class RefundNotClaimable(JobError):
    """409: the job is not finished, no refund is owed, or it is paid or being paid already."""


class InvalidRefundInvoice(JobError):
    """400: the BOLT11 invoice cannot be paid as this job's refund (amount, network, expiry, form)."""


class RefundPaymentFailed(JobError):
    """500 (seed 002: "Lightning payment failure"): the refund was not paid; it may be claimed again."""


class StubInvoiceNotFound(JobError):
    def __init__(self) -> None:
        super().__init__("No stub invoice with this payment hash")


class SessionNotFound(JobError):
    def __init__(self) -> None:
        super().__init__("Session not found")


class InvalidMacaroon(JobError):
    """401: missing, tampered, of another session, or expired."""

    def __init__(self) -> None:
        super().__init__("Missing or invalid macaroon")


class InsufficientBalance(JobError):
    """402: the balance (less what running requests hold) cannot cover what the request may cost."""


class SessionNotActive(JobError):
    """409: the deposit is not paid yet."""


class SessionExpiredError(JobError):
    """410: idle for longer than a session lives; its balance is owed back."""

    def __init__(self) -> None:
        super().__init__("Session expired")


class InvalidL402Token(JobError):
    """401: malformed, tampered, expired, for another request, a wrong preimage, an unpaid invoice."""


class L402TokenUsed(JobError):
    """409: another presentation of the token is running (an answered one is answered again)."""


class TopupRefused(JobError):
    """409: the session is neither active nor paused, or a top-up is pending already."""
