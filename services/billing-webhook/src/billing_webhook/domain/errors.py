"""Why billing refuses a command or cannot process a delivery. The HTTP layer maps the refusals
to codes of the catalogue; a delivery that raises one is recorded as failed (and can be replayed)."""


class BillingError(Exception):
    """Base of every refusal; raised before any event is recorded."""


class VariantNotFound(BillingError):
    """No active credit pack for this variant: nothing can be sold, or credited, for it."""

    def __init__(self, variant_id: str) -> None:
        super().__init__(f"no credit pack for variant {variant_id!r}")


class SessionNotFound(BillingError):
    def __init__(self, session_id: object) -> None:
        super().__init__(f"no checkout session {session_id!s}")


class InvalidCreditPack(BillingError):
    """A pack must grant credits and cost zero or more."""


class InvalidAmount(BillingError):
    """An amount or a number of credits out of range (a malformed delivery, never a rule of ours)."""


class DeliveryNotFound(BillingError):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"no delivery {delivery_id}")
