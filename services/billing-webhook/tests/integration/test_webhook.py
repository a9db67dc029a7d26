"""POST /webhook/lemonsqueezy: what is accepted, recorded and published, and what is refused."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from billing_webhook.app import create_app
from lf_contracts.events import CreditsPurchasedV1
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.proxy import TcpProxy

PURCHASED = CreditsPurchasedV1.routing_key


async def code_of(response) -> str:
    return (await response.json())["error"]["code"]


async def test_a_paid_order_is_recorded_answered_200_and_published_as_credits_purchased(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100, price_cents=500)
    session = await billing.session(lenser)
    delivery = ls.order(1001, session_id=session, variant_id="v-100", total=1000, quantity=2)
    response = await billing.deliver(delivery)
    assert response.status == 200
    body = await response.json()
    assert body["data"]["received"] is True and body["data"]["duplicate"] is False
    assert body["meta"]["requestId"]
    [message] = await published.wait_for(PURCHASED, 1)
    assert (
        message.body.items()
        >= {
            "orderId": "1001",
            "lenserId": str(lenser),
            "credits": 200,
            "amountCents": 1000,
            "currency": "USD",
            "variantId": "v-100",
            "testMode": True,
        }.items()
    )
    row = await billing.delivery(body["data"]["deliveryId"])
    assert (row["event_name"], row["status"], row["outcome"]) == ("order_created", "processed", "applied")
    status = await billing.db.fetchval("SELECT status FROM checkout_sessions WHERE session_id = $1", session)
    assert status == "completed"


async def test_a_custom_price_is_recorded_as_paid_and_the_credits_still_come_from_the_pack(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100, price_cents=500)
    session = await billing.session(lenser)
    await billing.accepted(ls.order(7, session_id=session, variant_id="v-100", total=123, test_mode=False))
    [message] = await published.wait_for(PURCHASED, 1)
    assert (message.body["credits"], message.body["amountCents"], message.body["testMode"]) == (
        100,
        123,
        False,
    )


def _flip_one_byte(body: bytes) -> bytes:
    at = body.index(b'"total":') + len(b'"total":')
    return body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]


async def test_every_unsigned_or_tampered_delivery_is_refused_with_401_and_nothing_is_recorded(
    billing, lenser
):
    await billing.pack("v-100")
    session = await billing.session(lenser)
    document = ls.order(1, session_id=session, variant_id="v-100", total=500)
    body = ls.encode(document)
    good = ls.sign(body, billing.settings.lemonsqueezy_webhook_secret)
    attempts = {
        "one byte of the body changed": (_flip_one_byte(body), good),
        "signed with another secret": (body, ls.sign(body, "not-the-secret")),
        "no signature": (body, None),
        "a signature of the wrong length": (body, good[:-2]),
        "a signature that is not hex": (body, "z" * 64),
        "the same JSON re-serialised with other whitespace": (json.dumps(document, indent=2).encode(), good),
    }
    for name, (sent, signature) in attempts.items():
        headers = {"Content-Type": "application/json", "X-Event-Name": "order_created"}
        if signature is not None:
            headers["X-Signature"] = signature
        response = await billing.api.post("/webhook/lemonsqueezy", data=sent, headers=headers)
        assert response.status == 401, name
        assert await code_of(response) == "webhook.invalid_signature", name
    assert await billing.delivery_streams() == 0
    assert (await billing.deliver(body)).status == 200  # the untouched original passes


def _without(document: dict, *path: str) -> dict:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(document: dict, value: object, *path: str) -> dict:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


async def test_malformed_deliveries_get_a_clear_4xx_never_a_500_and_nothing_is_recorded(billing, lenser):
    await billing.pack("v-100")
    session = await billing.session(lenser)
    order = ls.order(1, session_id=session, variant_id="v-100", total=500)
    limit = billing.settings.max_body_bytes
    cases: dict[str, tuple[bytes, int, str, set[str]]] = {
        "not JSON": (b"{not json", 400, "webhook.invalid_json", set()),
        "not UTF-8": (
            b'{"meta": {"event_name": "order_created"}, "x": "\xff"}',
            400,
            "webhook.invalid_json",
            set(),
        ),
        "a JSON array": (b"[1, 2]", 400, "webhook.invalid_json", set()),
        "NaN": (b'{"meta": NaN}', 400, "webhook.invalid_json", set()),
        "nested too deep to parse": (
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            400,
            "webhook.invalid_json",
            set(),
        ),
        "no data": (ls.encode(_without(order, "data")), 400, "validation_error", {"data"}),
        "no event name": (
            ls.encode(_without(order, "meta", "event_name")),
            400,
            "validation_error",
            {"meta.event_name"},
        ),
        "a total in dollars": (
            ls.encode(_with(order, 9.99, "data", "attributes", "total")),
            400,
            "validation_error",
            {"data.attributes.total"},
        ),
        "a quantity as text": (
            ls.encode(_with(order, "2", "data", "attributes", "first_order_item", "quantity")),
            400,
            "validation_error",
            {"data.attributes.first_order_item.quantity"},
        ),
        "attributes that are not an object": (
            ls.encode(_with(order, "paid", "data", "attributes")),
            400,
            "validation_error",
            {"data.attributes"},
        ),
        "an order that is not an order": (
            ls.encode(_with(order, "subscriptions", "data", "type")),
            400,
            "validation_error",
            {"data.type"},
        ),
        "a body over the size limit": (b"{" + b" " * limit + b"}", 400, "validation_error", {"body"}),
    }
    for name, (body, status, code, fields) in cases.items():
        response = await billing.deliver(body)
        assert response.status == status, name
        error = (await response.json())["error"]
        assert error["code"] == code, name
        assert {f["field"] for f in (error.get("details") or {}).get("fields", [])} >= fields, name
    assert await billing.delivery_streams() == 0


async def test_an_order_must_name_a_checkout_session_that_exists(billing, lenser):
    await billing.pack("v-100")
    missing = await billing.deliver(ls.order(1, session_id=None, variant_id="v-100", total=500))
    assert missing.status == 400 and await code_of(missing) == "webhook.missing_session"
    for unknown in ("8d4f6c1e-3b0a-4a39-9d0e-5f3b2f0c7a11", "REPLACE-WITH-SESSION-ID"):
        response = await billing.deliver(ls.order(1, session_id=unknown, variant_id="v-100", total=500))
        assert response.status == 404 and await code_of(response) == "webhook.session_not_found"
    assert await billing.delivery_streams() == 0


async def test_an_event_billing_does_not_handle_is_recorded_and_acknowledged(billing):
    document = {
        "meta": {"event_name": "license_key_created", "test_mode": True},
        "data": {"type": "license-keys", "id": "11", "attributes": {"key": "abc"}},
    }
    data = await billing.accepted(document)
    await billing.settled()
    row = await billing.delivery(data["deliveryId"])
    assert (row["status"], row["outcome"]) == ("processed", "ignored")


async def test_a_database_failure_while_recording_is_processing_failed_and_lemonsqueezy_will_retry(settings):
    target = urlsplit(settings.database_url)
    proxy = await TcpProxy(target.hostname, target.port or 5432).start()
    settings.database_url = settings.database_url.replace(
        f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}"
    )
    document = {
        "meta": {"event_name": "license_key_created"},
        "data": {"type": "x", "id": "1", "attributes": {}},
    }
    body = ls.encode(document)
    async with TestClient(TestServer(create_app(settings, background=False))) as api:
        await proxy.cut()
        response = await api.post(
            "/webhook/lemonsqueezy", data=body, headers=ls.headers(body, settings.lemonsqueezy_webhook_secret)
        )
        assert response.status == 500 and await code_of(response) == "webhook.processing_failed"


@pytest.mark.parametrize("route", ["/internal/checkouts", "/internal/credit-packs"])
async def test_internal_routes_need_the_platform_key(api, route):
    response = await api.get(route) if route.endswith("packs") else await api.post(route, json={})
    assert response.status == 401 and await code_of(response) == "auth.unauthorized"


async def test_a_paid_order_whose_buyer_typed_a_nul_in_their_name_is_still_recorded_and_credited(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100, price_cents=500)
    session = await billing.session(lenser)
    delivery = ls.order(1002, session_id=session, variant_id="v-100", total=500)
    delivery["data"]["attributes"]["user_name"] = "Bob\u0000"
    response = await billing.deliver(delivery)
    assert response.status == 200, await response.text()
    [message] = await published.wait_for(PURCHASED, 1)
    assert (message.body["orderId"], message.body["credits"]) == ("1002", 100)


async def test_a_currency_that_is_not_three_ascii_letters_is_refused_at_receipt(billing, lenser):
    # "ßßß".upper() is "SSSSSS": accepted, it would later be refused by the contract, in the relay.
    await billing.pack("v-100", credits=100, price_cents=500)
    session = await billing.session(lenser)
    response = await billing.deliver(
        ls.order(1003, session_id=session, variant_id="v-100", total=500, currency="ßßß")
    )
    assert response.status == 400 and await code_of(response) == "validation_error"
