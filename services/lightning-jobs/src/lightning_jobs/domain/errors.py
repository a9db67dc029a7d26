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
