"""The wallet's refusals, as codes of the catalogue."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from lf_contracts import errors as codes
from lf_contracts.errors import ApiError
from wallet_api.domain import errors

CODES: dict[type[errors.WalletError], codes.ErrorCode] = {
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


@web.middleware
async def wallet_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.WalletError as refusal:
        raise ApiError(CODES[type(refusal)], str(refusal) or None) from None
