"""Buyers' personal data: kept out of the log, kept beside it for the retention only."""

from __future__ import annotations

import json
from datetime import timedelta

from billing_webhook.application.billing import Billing
from lf_contracts.events import CreditsPurchasedV1
from lf_testing.fakes import lemonsqueezy as ls

PURCHASED = CreditsPurchasedV1.routing_key


async def test_a_deliverys_personal_data_stays_out_of_the_log_and_is_deleted_after_the_retention(
    billing, published, lenser
):
    await billing.pack("v-100", credits=100, price_cents=500)
    session = await billing.session(lenser)
    delivery = ls.order(51, session_id=session, variant_id="v-100", total=500)
    delivery["data"]["attributes"].update(user_name="Ada Buyer", user_email="ada@example.com")
    received = await billing.accepted(delivery)
    await published.wait_for(PURCHASED, 1)  # processed from the record without them

    log = json.dumps([dict(r) for r in await billing.db.fetch("SELECT data, metadata FROM events")])
    snapshots = json.dumps([r["snapshot"] for r in await billing.db.fetch("SELECT snapshot FROM streams")])
    assert "ada@example.com" not in log and "Ada Buyer" not in log and "ada@example.com" not in snapshots
    [recorded] = await billing.events("DeliveryReceived")
    attributes = recorded["payload"]["data"]["attributes"]
    assert (attributes["total"], attributes["currency"], attributes["status"]) == (500, "USD", "paid")
    kept = await billing.db.fetchval(
        "SELECT data FROM delivery_personal_data WHERE delivery_id = $1", received["deliveryId"]
    )
    assert (kept["user_email"], kept["user_name"]) == ("ada@example.com", "Ada Buyer")

    deliveries = Billing.create(billing.db).deliveries
    retention = timedelta(days=billing.settings.delivery_personal_data_retention_days)
    assert await deliveries.forget_personal_data(retention) == 0  # received just now: kept
    await billing.db.execute(
        "UPDATE delivery_personal_data SET received_at = received_at - $1::interval", retention
    )
    assert await deliveries.forget_personal_data(retention) == 1
    assert await billing.db.fetchval("SELECT count(*) FROM delivery_personal_data") == 0
    # The financial facts stay: the delivery is still there to show and to replay.
    assert len(await billing.events("DeliveryReceived")) == 1
    assert (await billing.delivery(received["deliveryId"]))["status"] == "processed"
