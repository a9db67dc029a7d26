"""The LemonSqueezy API, as billing needs it: creating a checkout (JSON:API over HTTPS).

``POST {LEMONSQUEEZY_API_URL}/v1/checkouts`` with the store and variant as relationships and our
checkout session id in ``checkout_data.custom`` (LemonSqueezy hands it back in every delivery about
the order as ``meta.custom_data``). LemonSqueezy's refusals, errors and silences are
``billing.upstream_error`` (502); a success answer without a checkout id and URL is
``billing.session_failed`` (500). The API key is sent, never logged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import aiohttp
import structlog

from billing_webhook.metrics import LEMONSQUEEZY_LATENCY, LEMONSQUEEZY_REQUESTS
from lf_contracts.errors import BILLING_SESSION_FAILED, BILLING_UPSTREAM_ERROR, ApiError

JSON_API = "application/vnd.api+json"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Checkout:
    checkout_id: str
    url: str


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    variant_id: str
    session_id: UUID
    email: str | None
    test_mode: bool
    expires_at: datetime
    redirect_url: str | None = None


class LemonSqueezyClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        api_url: str,
        api_key: str,
        store_id: str,
        timeout_seconds: float,
    ) -> None:
        self._http, self._api_url, self._store_id = http, api_url.rstrip("/"), store_id
        self._headers = {"Accept": JSON_API, "Content-Type": JSON_API, "Authorization": f"Bearer {api_key}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        started = time.perf_counter()
        try:
            async with self._http.post(
                f"{self._api_url}/v1/checkouts",
                data=json.dumps(checkout_document(request, self._store_id)),
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            self._count("unreachable", started)
            log.warning("lemonsqueezy.unreachable", operation="create_checkout", error=type(error).__name__)
            raise ApiError(
                BILLING_UPSTREAM_ERROR, f"LemonSqueezy did not answer: {type(error).__name__}"
            ) from None
        if not 200 <= status < 300:
            self._count("refused", started)
            log.warning(
                "lemonsqueezy.refused", operation="create_checkout", status=status, errors=_titles(body)
            )
            raise ApiError(BILLING_UPSTREAM_ERROR, f"LemonSqueezy answered {status}")
        checkout = _checkout(body)
        if checkout is None:
            self._count("malformed", started)
            log.error("lemonsqueezy.malformed_answer", operation="create_checkout", status=status)
            raise ApiError(BILLING_SESSION_FAILED, "LemonSqueezy's answer names no checkout")
        self._count("ok", started)
        return checkout

    @staticmethod
    def _count(outcome: str, started: float) -> None:
        LEMONSQUEEZY_REQUESTS.labels("create_checkout", outcome).inc()
        LEMONSQUEEZY_LATENCY.labels("create_checkout").observe(time.perf_counter() - started)


def checkout_document(request: CheckoutRequest, store_id: str) -> dict[str, Any]:
    checkout_data: dict[str, Any] = {"custom": {"session_id": str(request.session_id)}}
    if request.email:
        checkout_data["email"] = request.email
    attributes: dict[str, Any] = {
        "checkout_data": checkout_data,
        "test_mode": request.test_mode,
        "expires_at": request.expires_at.isoformat(),
    }
    if request.redirect_url:
        attributes["product_options"] = {"redirect_url": request.redirect_url}
    return {
        "data": {
            "type": "checkouts",
            "attributes": attributes,
            "relationships": {
                "store": {"data": {"type": "stores", "id": store_id}},
                "variant": {"data": {"type": "variants", "id": request.variant_id}},
            },
        }
    }


def _checkout(body: bytes) -> Checkout | None:
    try:
        data = json.loads(body)["data"]
        checkout_id, url = data["id"], data["attributes"]["url"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(checkout_id, str) and checkout_id and isinstance(url, str)):
        return None
    return Checkout(checkout_id, url) if url.startswith(("https://", "http://")) else None


def _titles(body: bytes) -> list[str]:
    """The titles of a JSON:API error document, for the log."""
    try:
        errors = json.loads(body).get("errors") or []
        return [str(e.get("detail") or e.get("title")) for e in errors if isinstance(e, dict)][:5]
    except (ValueError, AttributeError):
        return []
