"""The wallet's refusals, as codes of the catalogue (answered by ``lf_web``'s error middleware)."""

from __future__ import annotations

from lf_contracts import errors as codes
from lf_web import Refusals
from wallet_api.domain import errors

CODES: Refusals = {
    errors.InvalidAmount: codes.WALLET_INVALID_AMOUNT,
    errors.AccountFrozen: codes.WALLET_ACCOUNT_FROZEN,
    errors.InsufficientBalance: codes.WALLET_INSUFFICIENT_BALANCE,
    errors.SpendingLimitExceeded: codes.WALLET_SPENDING_LIMIT_EXCEEDED,
    errors.WalletNotFound: codes.WALLET_NOT_FOUND,
    errors.ReservationNotFound: codes.WALLET_RESERVATION_NOT_FOUND,
    errors.ReservationClosed: codes.WALLET_RESERVATION_CLOSED,
    errors.ReservationAlreadyCaptured: codes.WALLET_RESERVATION_CLOSED,
    errors.IdempotencyConflict: codes.WALLET_IDEMPOTENCY_CONFLICT,
}
