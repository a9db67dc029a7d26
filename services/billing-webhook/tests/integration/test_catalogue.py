"""The credit-pack catalogue: managed through internal routes, published for wallet-api, seeded for dev."""

from __future__ import annotations

from billing_webhook.application.billing import Billing
from billing_webhook.application.catalogue import DEV_PACKS
from lf_contracts.events import CreditPackChangedV1

PACK_CHANGED = CreditPackChangedV1.routing_key


async def test_a_pack_is_defined_changed_listed_and_published_once_per_change(billing, published):
    first = await (await billing.pack("v-100", credits=100, price_cents=500)).json()
    assert first["data"] == {
        "variantId": "v-100",
        "productId": "p-1",
        "name": "100 credits",
        "priceCents": 500,
        "creditsGranted": 100,
        "testMode": False,
        "active": True,
        "changed": True,
    }
    unchanged = await (await billing.pack("v-100", credits=100, price_cents=500)).json()
    assert unchanged["data"]["changed"] is False
    await billing.pack("v-100", credits=120, price_cents=500, active=False)
    listed = await (await billing.api.get("/internal/credit-packs", headers=billing.internal)).json()
    assert [(p["variantId"], p["creditsGranted"], p["active"]) for p in listed["data"]["packs"]] == [
        ("v-100", 120, False)
    ]
    await billing.published_all()
    messages = await published.wait_for(PACK_CHANGED, 2)
    assert [(m.body["variantId"], m.body["creditsGranted"], m.body["active"]) for m in messages] == [
        ("v-100", 100, True),
        ("v-100", 120, False),
    ]


async def test_a_pack_that_grants_nothing_or_a_bad_variant_id_is_a_validation_error(billing):
    bad_body = await billing.api.put(
        "/internal/credit-packs/v-1",
        json={"productId": "p", "name": "n", "priceCents": 100, "creditsGranted": 0},
        headers=billing.internal,
    )
    bad_id = await billing.api.put(
        "/internal/credit-packs/v%201",
        json={"productId": "p", "name": "n", "priceCents": 100, "creditsGranted": 5},
        headers=billing.internal,
    )
    for response in (bad_body, bad_id):
        assert response.status == 400 and (await response.json())["error"]["code"] == "validation_error"


async def test_seeding_defines_the_dev_packs_into_an_empty_catalogue_only(billing):
    packs = Billing.create(billing.db).packs
    assert await packs.seed() == list(DEV_PACKS)
    assert await packs.seed() == []
    rows = await billing.db.fetch("SELECT variant_id, credits_granted, test_mode FROM credit_packs")
    assert {(r["variant_id"], r["credits_granted"], r["test_mode"]) for r in rows} == {
        ("dev-100", 100, True),
        ("dev-550", 550, True),
        ("dev-1200", 1200, True),
    }
