"""Why a wallet refuses a command. The HTTP layer maps each to a code of the catalogue."""


class WalletError(Exception):
    """Base of every refusal; raised before any event is recorded."""


class InvalidAmount(WalletError):
    pass


class AccountFrozen(WalletError):
    pass


class InsufficientBalance(WalletError):
    pass


class SpendingLimitExceeded(WalletError):
    pass


class ReservationNotFound(WalletError):
    pass


class ReservationClosed(WalletError):
    """The reservation was released or expired; it can no longer be captured."""


class ReservationStillOpen(WalletError):
    """Only a reservation that expired is charged after the fact; an open one is captured."""


class ReservationAlreadyCaptured(WalletError):
    """Releasing a captured reservation would refund credits that were already spent."""

    def __init__(self) -> None:
        super().__init__("Reservation was already captured; its credits are spent")


class WalletNotFound(WalletError):
    pass


class IdempotencyConflict(WalletError):
    """A retry key (reference id, grant key) came back with a different amount."""
