"""billing-webhook's internal checkout endpoint, as wallet-api's POST /wallet/checkout needs it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import aiohttp

from lf_contracts.errors import BILLING_UPSTREAM_ERROR, CATALOGUE, ApiError


class BillingClient:
    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, api_key: str, timeout_seconds: float
    ) -> None:
        self._http, self._base_url, self._api_key = http, base_url.rstrip("/"), api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def create_checkout(
        self, lenser_id: UUID, variant_id: str, email: str | None, *, request_id: str
    ) -> dict[str, Any]:
        body = {"lenserId": str(lenser_id), "variantId": variant_id, "email": email}
        headers = {"X-Platform-Api-Key": self._api_key, "X-Request-Id": request_id}
        try:
            async with self._http.post(
                f"{self._base_url}/internal/checkouts", json=body, headers=headers, timeout=self._timeout
            ) as response:
                payload = await response.json(content_type=None)
                if response.status in (200, 201):
                    data = payload["data"]
                    session = {"checkoutUrl": data["checkoutUrl"], "checkoutId": data["checkoutId"]}
                    if "sessionId" in data:  # lets a developer sign a test delivery for it
                        session["sessionId"] = data["sessionId"]
                    return session
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as error:
            raise ApiError(
                BILLING_UPSTREAM_ERROR, f"billing-webhook unreachable: {type(error).__name__}"
            ) from None
        # billing's own refusals (an unknown variant, LemonSqueezy down) pass through unchanged.
        code = (payload.get("error") or {}).get("code") if isinstance(payload, dict) else None
        if code in CATALOGUE and code.startswith("billing."):
            raise ApiError(CATALOGUE[code], payload["error"].get("message"))
        raise ApiError(BILLING_UPSTREAM_ERROR)
