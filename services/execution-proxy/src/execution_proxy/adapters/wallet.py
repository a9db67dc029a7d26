"""wallet-api's internal reservation routes, as an execution needs them.

Reserving is the one call an execution waits on before the provider: the wallet's refusals
(402 short, 403 frozen, 429 over a spending cap, 404 no wallet) pass through with the wallet's own
code; anything else (unreachable, timed out, a 5xx) is ``wallet.reservation_failed`` (503) and nothing
was spent. Settling is not here: it travels as an event through the relay (``integration_events``),
so a charge survives a crash of either service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import aiohttp

from lf_contracts.errors import CATALOGUE, WALLET_RESERVATION_CLOSED, WALLET_RESERVATION_FAILED, ApiError

PASSED_THROUGH = frozenset(
    {
        "wallet.insufficient_balance",
        "wallet.account_frozen",
        "wallet.spending_limit_exceeded",
        "wallet.not_found",
        "wallet.invalid_amount",
        # The same referenceId reserved for another amount: a caller's bug, never worth a retry.
        "wallet.idempotency_conflict",
    }
)


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: UUID
    amount: int
    expires_at: datetime
    available_balance: int | None
    """The payer's available credits right after reserving (None from a wallet that does not say)."""
    status: str = "reserved"


class WalletClient:
    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, api_key: str, timeout_seconds: float
    ) -> None:
        self._http, self._base_url, self._api_key = http, base_url.rstrip("/"), api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def reserve(
        self, payer_id: UUID, amount: int, *, reference_id: str, ttl_seconds: int, request_id: str
    ) -> Reservation:
        body = {
            "lenserId": str(payer_id),
            "amount": amount,
            "referenceId": reference_id,
            "ttlSeconds": ttl_seconds,
        }
        reservation = await self._post("/internal/reservations", body, request_id)
        if reservation.status != "reserved":
            # The reference's reservation from an earlier attempt, expired or settled since: it
            # holds nothing, so running the provider now would spend credits nobody holds.
            raise ApiError(WALLET_RESERVATION_CLOSED, f"this reference's reservation is {reservation.status}")
        return reservation

    async def extend(self, reservation_id: UUID, *, ttl_seconds: int, request_id: str) -> Reservation:
        """Keep a reservation alive for ``ttl_seconds`` more (the wallet caps its whole lifetime)."""
        return await self._post(
            f"/internal/reservations/{reservation_id}/extend", {"ttlSeconds": ttl_seconds}, request_id
        )

    async def _post(self, path: str, body: dict[str, Any], request_id: str) -> Reservation:
        """The reservation the wallet answered with; any answer that is not one (unreachable, a
        5xx, a body of another shape) is ``wallet.reservation_failed``."""
        headers = {"X-Platform-Api-Key": self._api_key, "X-Request-Id": request_id}
        try:
            async with self._http.post(
                f"{self._base_url}{path}", json=body, headers=headers, timeout=self._timeout
            ) as response:
                payload = await response.json(content_type=None)
                if response.status in (200, 201):
                    return _reservation(payload["data"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as error:
            raise ApiError(
                WALLET_RESERVATION_FAILED, f"wallet-api unreachable: {type(error).__name__}"
            ) from None
        error = payload.get("error") if isinstance(payload, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(code, str):
            raise ApiError(WALLET_RESERVATION_FAILED, f"wallet-api answered {response.status}")
        if code in PASSED_THROUGH or (code in CATALOGUE and path.endswith("/extend")):
            headers = (
                {"Retry-After": response.headers["Retry-After"]}
                if "Retry-After" in response.headers
                else None
            )
            raise ApiError(CATALOGUE[code], error.get("message"), headers=headers)
        raise ApiError(WALLET_RESERVATION_FAILED, f"wallet-api answered {response.status}")


def _reservation(data: dict[str, Any]) -> Reservation:
    return Reservation(
        reservation_id=UUID(data["reservationId"]),
        amount=data["amount"],
        expires_at=datetime.fromisoformat(data["expiresAt"]),
        available_balance=data.get("availableBalance"),
        status=data.get("status", "reserved"),
    )
