"""A fake LemonSqueezy: its checkout API over HTTP, and deliveries built and signed like its webhooks.

``FakeLemonSqueezy`` serves ``POST /v1/checkouts`` as the real API does (JSON:API, Bearer key,
``201`` with the checkout and its URL), records every request it gets, and can be told to refuse
(``fail_with(422)``), to break (``fail_with(500)``), to answer something else (``respond_with``)
or to never answer (``hang()``).

The delivery helpers build the JSON:API documents LemonSqueezy posts to a webhook (``order``,
``subscription``, ``subscription_invoice``), serialise them (``encode``) and sign them (``sign``:
hex HMAC-SHA256 of the raw body, the ``X-Signature`` header).

Also runnable for development, as the LemonSqueezy of ``make dev``::

    python -m lf_testing.fakes.lemonsqueezy --port 8790   # then LEMONSQUEEZY_API_URL=http://127.0.0.1:8790
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from lf_testing.fakes.server import FakeServer

JSON_API = "application/vnd.api+json"


@dataclass(frozen=True)
class CheckoutCall:
    """One request the fake received: its headers and its parsed body (None if not JSON)."""

    headers: dict[str, str]
    body: Any


class FakeLemonSqueezy(FakeServer):
    def __init__(self, *, api_key: str | None = None, store_slug: str = "lenserfight") -> None:
        """``api_key``: the Bearer key to demand (any key when None)."""
        super().__init__()
        self.api_key, self.store_slug = api_key, store_slug
        self.checkouts: list[CheckoutCall] = []
        self._failure: int | None = None
        self._answer: tuple[int, dict[str, Any]] | None = None

    def fail_with(self, status: int) -> None:
        """Answer every checkout with ``status`` and a JSON:API error document."""
        self._failure = status

    def respond_with(self, status: int, document: dict[str, Any]) -> None:
        """Answer every checkout with this status and body (e.g. a success that names no URL)."""
        self._answer = (status, document)

    def recover(self) -> None:
        self._failure, self._answer = None, None
        super().recover()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/checkouts", self._create_checkout)
        return app

    async def _create_checkout(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.checkouts.append(CheckoutCall(dict(request.headers), body))
        await self.hang_if_told()
        if self._answer is not None:
            return _json(*self._answer)
        if self._failure is not None:
            return _errors(self._failure, "Server Error" if self._failure >= 500 else "Unprocessable Entity")
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _errors(401, "Unauthenticated.")
        if request.headers.get("Content-Type") != JSON_API or request.headers.get("Accept") != JSON_API:
            return _errors(415, "Unsupported Media Type", "Content-Type and Accept must be " + JSON_API)
        problem = _invalid_checkout(body)
        if problem is not None:
            return _errors(422, "Unprocessable Entity", problem)
        return _json(201, self._checkout(body["data"]))

    def _checkout(self, data: dict[str, Any]) -> dict[str, Any]:
        checkout_id = str(uuid.uuid4())
        attributes = data.get("attributes") or {}
        store_id = data["relationships"]["store"]["data"]["id"]
        variant_id = data["relationships"]["variant"]["data"]["id"]
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        signature = hashlib.sha256(checkout_id.encode()).hexdigest()
        return {
            "jsonapi": {"version": "1.0"},
            "links": {"self": f"{self.url}/v1/checkouts/{checkout_id}"},
            "data": {
                "type": "checkouts",
                "id": checkout_id,
                "attributes": {
                    "store_id": _number(store_id),
                    "variant_id": _number(variant_id),
                    "custom_price": attributes.get("custom_price"),
                    "product_options": attributes.get("product_options") or {},
                    "checkout_options": attributes.get("checkout_options") or {},
                    "checkout_data": attributes.get("checkout_data") or {},
                    "preview": attributes.get("preview", False),
                    "expires_at": attributes.get("expires_at"),
                    "created_at": now,
                    "updated_at": now,
                    "test_mode": bool(attributes.get("test_mode", False)),
                    "url": (
                        f"https://{self.store_slug}.lemonsqueezy.com/checkout/custom/{checkout_id}"
                        f"?signature={signature}"
                    ),
                },
                "relationships": {
                    "store": {"links": {"related": f"{self.url}/v1/checkouts/{checkout_id}/store"}},
                    "variant": {"links": {"related": f"{self.url}/v1/checkouts/{checkout_id}/variant"}},
                },
                "links": {"self": f"{self.url}/v1/checkouts/{checkout_id}"},
            },
        }


def _invalid_checkout(body: Any) -> str | None:
    """What the real API would refuse with 422, or None."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("type") != "checkouts":
        return "The data.type field must be checkouts."
    relationships = data.get("relationships") or {}
    for name, kind in (("store", "stores"), ("variant", "variants")):
        related = (relationships.get(name) or {}).get("data") or {}
        if related.get("type") != kind or not related.get("id"):
            return f"The {name} field is required."
    return None


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _json(status: int, document: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=json.dumps(document), content_type=JSON_API)


def _errors(status: int, title: str, detail: str | None = None) -> web.Response:
    error = {"status": str(status), "title": title, "detail": detail or title}
    return _json(status, {"jsonapi": {"version": "1.0"}, "errors": [error]})


# --- deliveries ---------------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The ``X-Signature`` LemonSqueezy sends: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(document: dict[str, Any]) -> bytes:
    """A delivery's raw body, serialised as LemonSqueezy does (compact JSON)."""
    return json.dumps(document, separators=(",", ":")).encode()


def headers(body: bytes, secret: str, event_name: str | None = None) -> dict[str, str]:
    """The headers of a signed delivery of ``body``."""
    result = {"Content-Type": "application/json", "X-Signature": sign(body, secret)}
    if event_name is None:
        try:
            event_name = json.loads(body)["meta"]["event_name"]
        except (ValueError, KeyError, TypeError, RecursionError):  # a malformed body on purpose
            event_name = None
    if isinstance(event_name, str):
        result["X-Event-Name"] = event_name
    return result


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _meta(event_name: str, session_id: object | None, test_mode: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"test_mode": test_mode, "event_name": event_name, "webhook_id": str(uuid.uuid4())}
    if session_id is not None:
        meta["custom_data"] = {"session_id": str(session_id)}
    return meta


def order(
    order_id: int | str,
    *,
    session_id: object | None,
    variant_id: int | str,
    total: int,
    event_name: str = "order_created",
    status: str = "paid",
    quantity: int = 1,
    refunded_amount: int = 0,
    currency: str = "USD",
    test_mode: bool = True,
    store_id: int = 1,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An ``order_created`` or ``order_refunded`` delivery (``data.type`` ``orders``)."""
    at = at or datetime.now(UTC)
    refunded = refunded_amount > 0
    attributes = {
        "store_id": store_id,
        "customer_id": 1,
        "identifier": str(uuid.uuid5(uuid.NAMESPACE_URL, f"order-{order_id}")),
        "order_number": int(order_id) if str(order_id).isdigit() else 1,
        "user_name": "Dev Lenser",
        "user_email": "lenser@example.com",
        "currency": currency,
        "currency_rate": "1.0000",
        "subtotal": total,
        "discount_total": 0,
        "tax": 0,
        "total": total,
        "subtotal_usd": total,
        "discount_total_usd": 0,
        "tax_usd": 0,
        "total_usd": total,
        "tax_name": None,
        "tax_rate": "0.00",
        "status": status,
        "status_formatted": status.replace("_", " ").title(),
        "refunded": refunded,
        "refunded_at": _stamp(at) if refunded else None,
        "refunded_amount": refunded_amount,
        "refunded_amount_usd": refunded_amount,
        "first_order_item": {
            "id": 1,
            "order_id": int(order_id) if str(order_id).isdigit() else 1,
            "product_id": 1,
            "variant_id": _number(str(variant_id)),
            "product_name": "Credits",
            "variant_name": f"Variant {variant_id}",
            "price": total // max(quantity, 1),
            "quantity": quantity,
            "created_at": _stamp(at),
            "updated_at": _stamp(at),
            "test_mode": test_mode,
        },
        "urls": {"receipt": f"https://app.lemonsqueezy.com/my-orders/{order_id}"},
        "created_at": _stamp(at),
        "updated_at": _stamp(at),
        "test_mode": test_mode,
    }
    return {
        "meta": _meta(event_name, session_id, test_mode),
        "data": {
            "type": "orders",
            "id": str(order_id),
            "attributes": attributes,
            "relationships": {},
            "links": {"self": f"https://api.lemonsqueezy.com/v1/orders/{order_id}"},
        },
    }


def subscription(
    subscription_id: int | str,
    *,
    session_id: object | None,
    variant_id: int | str,
    event_name: str = "subscription_created",
    status: str = "active",
    cancelled: bool = False,
    updated_at: datetime | None = None,
    renews_at: datetime | None = None,
    ends_at: datetime | None = None,
    test_mode: bool = True,
) -> dict[str, Any]:
    """A ``subscription_*`` delivery (``data.type`` ``subscriptions``)."""
    updated_at = updated_at or datetime.now(UTC)
    attributes = {
        "store_id": 1,
        "customer_id": 1,
        "order_id": 1,
        "order_item_id": 1,
        "product_id": 1,
        "variant_id": _number(str(variant_id)),
        "product_name": "Credits subscription",
        "variant_name": f"Variant {variant_id}",
        "user_name": "Dev Lenser",
        "user_email": "lenser@example.com",
        "status": status,
        "status_formatted": status.replace("_", " ").title(),
        "cancelled": cancelled,
        "pause": None,
        "trial_ends_at": None,
        "renews_at": _stamp(renews_at or updated_at + timedelta(days=30)),
        "ends_at": _stamp(ends_at) if ends_at else None,
        "created_at": _stamp(updated_at),
        "updated_at": _stamp(updated_at),
        "test_mode": test_mode,
    }
    return {
        "meta": _meta(event_name, session_id, test_mode),
        "data": {"type": "subscriptions", "id": str(subscription_id), "attributes": attributes},
    }


def subscription_invoice(
    invoice_id: int | str,
    *,
    subscription_id: int | str,
    session_id: object | None = None,
    total: int,
    billing_reason: str = "renewal",
    status: str = "paid",
    currency: str = "USD",
    test_mode: bool = True,
    event_name: str = "subscription_payment_success",
    at: datetime | None = None,
    refunded_amount: int = 0,
) -> dict[str, Any]:
    """A ``subscription_payment_*`` delivery (``data.type`` ``subscription-invoices``);
    ``refunded_amount`` (cumulative cents) for ``subscription_payment_refunded``."""
    at = at or datetime.now(UTC)
    attributes = {
        "store_id": 1,
        "subscription_id": _number(str(subscription_id)),
        "customer_id": 1,
        "user_name": "Dev Lenser",
        "user_email": "lenser@example.com",
        "billing_reason": billing_reason,
        "card_brand": "visa",
        "card_last_four": "4242",
        "currency": currency,
        "currency_rate": "1.00000000",
        "status": status,
        "status_formatted": status.title(),
        "refunded": refunded_amount >= total > 0,
        "refunded_at": _stamp(at) if refunded_amount >= total > 0 else None,
        "subtotal": total,
        "discount_total": 0,
        "tax": 0,
        "total": total,
        "refunded_amount": refunded_amount,
        "subtotal_usd": total,
        "discount_total_usd": 0,
        "tax_usd": 0,
        "total_usd": total,
        "created_at": _stamp(at),
        "updated_at": _stamp(at),
        "test_mode": test_mode,
    }
    return {
        "meta": _meta(event_name, session_id, test_mode),
        "data": {"type": "subscription-invoices", "id": str(invoice_id), "attributes": attributes},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lf_testing.fakes.lemonsqueezy", description=__doc__)
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--api-key", help="the Bearer key to demand (default: any)")
    args = parser.parse_args(argv)
    fake = FakeLemonSqueezy(api_key=args.api_key)
    fake.port = args.port
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
