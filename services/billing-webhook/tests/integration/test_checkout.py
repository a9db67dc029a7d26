"""POST /internal/checkouts: a LemonSqueezy checkout per session, recorded only when it exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing_webhook.application.billing import Billing
from lf_testing.fakes import lemonsqueezy as ls


async def code_of(response) -> str:
    return (await response.json())["error"]["code"]


async def sessions(billing) -> int:
    return await billing.db.fetchval("SELECT count(*) FROM checkout_sessions")


async def test_a_checkout_sends_lemonsqueezy_its_json_api_document_and_records_the_session(
    billing, lemonsqueezy, lenser
):
    await billing.pack("v-100", credits=100, test_mode=True)
    response = await billing.checkout(lenser, "v-100", email="lenser@example.com")
    assert response.status == 201
    data = (await response.json())["data"]
    assert data["checkoutUrl"].startswith("https://lenserfight.lemonsqueezy.com/checkout/custom/")
    [call] = lemonsqueezy.checkouts
    assert call.headers["Authorization"] == f"Bearer {billing.settings.lemonsqueezy_api_key}"
    assert call.headers["Content-Type"] == call.headers["Accept"] == "application/vnd.api+json"
    document = call.body["data"]
    assert document["type"] == "checkouts"
    assert document["attributes"]["checkout_data"] == {
        "email": "lenser@example.com",
        "custom": {"session_id": data["sessionId"]},
    }
    assert document["attributes"]["test_mode"] is True
    assert document["relationships"] == {
        "store": {"data": {"type": "stores", "id": billing.settings.lemonsqueezy_store_id}},
        "variant": {"data": {"type": "variants", "id": "v-100"}},
    }
    row = await billing.db.fetchrow(
        "SELECT * FROM checkout_sessions WHERE session_id = $1", data["sessionId"]
    )
    assert (row["lenser_id"], row["variant_id"], row["status"]) == (lenser, "v-100", "created")
    assert (row["checkout_id"], row["checkout_url"]) == (data["checkoutId"], data["checkoutUrl"])


async def test_an_unknown_or_inactive_variant_is_variant_not_found_and_lemonsqueezy_is_not_asked(
    billing, lemonsqueezy, lenser
):
    await billing.pack("v-old", active=False)
    for variant in ("v-nope", "v-old"):
        response = await billing.checkout(lenser, variant)
        assert response.status == 404 and await code_of(response) == "billing.variant_not_found"
    assert lemonsqueezy.checkouts == [] and await sessions(billing) == 0


async def test_lemonsqueezy_refusing_failing_or_hanging_is_an_upstream_error_and_records_no_session(
    billing, lemonsqueezy, lenser
):
    await billing.pack("v-100")
    for failure in (422, 500):
        lemonsqueezy.fail_with(failure)
        response = await billing.checkout(lenser)
        assert response.status == 502 and await code_of(response) == "billing.upstream_error", failure
    lemonsqueezy.recover()
    lemonsqueezy.hang()
    started = datetime.now(UTC)
    response = await billing.checkout(lenser)
    assert response.status == 502 and await code_of(response) == "billing.upstream_error"
    assert datetime.now(UTC) - started < timedelta(seconds=5)  # the client's timeout, not LemonSqueezy's
    assert await sessions(billing) == 0


async def test_a_success_answer_naming_no_checkout_is_session_failed(billing, lemonsqueezy, lenser):
    await billing.pack("v-100")
    lemonsqueezy.respond_with(201, {"data": {"type": "checkouts", "id": "c-1", "attributes": {}}})
    response = await billing.checkout(lenser)
    assert response.status == 500 and await code_of(response) == "billing.session_failed"
    assert await sessions(billing) == 0


async def test_a_paid_session_completes_and_an_unpaid_one_expires_after_its_time(billing, lenser):
    await billing.pack("v-100")
    paid, unpaid = await billing.session(lenser), await billing.session(lenser)
    await billing.accepted(ls.order(21, session_id=paid, variant_id="v-100", total=500))
    await billing.settled()
    later = datetime.now(UTC) + timedelta(seconds=billing.settings.checkout_session_ttl_seconds + 1)
    assert await Billing.create(billing.db, clock=lambda: later).checkouts.expire_due() == 1
    rows = await billing.db.fetch("SELECT session_id::text, status, order_id FROM checkout_sessions")
    assert {tuple(r) for r in rows} == {(paid, "completed", "21"), (unpaid, "expired", None)}


async def test_checkout_bodies_are_validated(billing, lenser):
    for body in ({"variantId": "v-100"}, {"lenserId": "not-a-uuid", "variantId": "v-100"}, []):
        response = await billing.api.post("/internal/checkouts", json=body, headers=billing.internal)
        assert response.status == 400 and await code_of(response) == "validation_error"
