"""The checkout-expiry job can commit CheckoutSessionExpired on a session while the delivery
processor's batch that pays it runs; the processor then completes the (expired) session. Live:
'completed'. When the batch was one transaction that took its xid at its start, readers (ordering
by transaction_id, position) replayed Completed before Expired and a rebuild ended at 'expired'.
Each delivery is now its own transaction, started after the expiry: the rebuild must agree."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from aiohttp.test_utils import TestClient, TestServer

from billing_webhook.app import SCHEMA, create_app
from billing_webhook.application.billing import Billing
from billing_webhook.application.checkouts import CheckoutSessions
from billing_webhook.application.processor import DeliveryProcessor
from billing_webhook.handlers import HANDLERS
from billing_webhook.projections import ALL
from lf_pg import DatabaseAccess
from lf_projections import catch_up_once, catch_up_outside, rebuild
from lf_testing.fakes import lemonsqueezy as ls
from lf_testing.waiting import eventually

INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}
SECRET = "test-webhook-secret"


class ExpiryRacesTheBatch:
    """The real DeliveryProcessor, with the expiry job committing while its batch runs."""

    def __init__(self, processor, expire):
        self.processor, self.expire = processor, expire
        self.name, self.types = processor.name, processor.types

    catch_up_once = catch_up_outside

    async def handle_batch_on_pool(self, pool, events):
        assert await self.expire() == 1
        await self.processor.handle_batch_on_pool(pool, events)


async def test_rebuilt_checkout_sessions_equal_live_when_expiry_races_the_paying_delivery(db, settings):
    async with TestClient(TestServer(create_app(settings, background=False))) as api:
        await _race(api, db, settings)


async def _race(api, db, settings):
    r = await api.put(
        "/internal/credit-packs/v-100",
        headers=INTERNAL,
        json={"productId": "p", "name": "100", "priceCents": 500, "creditsGranted": 100},
    )
    assert r.status == 200
    r = await api.post(
        "/internal/checkouts", headers=INTERNAL, json={"lenserId": str(uuid4()), "variantId": "v-100"}
    )
    assert r.status == 201, await r.text()
    session = (await r.json())["data"]["sessionId"]
    body = ls.encode(ls.order(1001, session_id=session, variant_id="v-100", total=500))
    r = await api.post("/webhook/lemonsqueezy", data=io.BytesIO(body), headers=ls.headers(body, SECRET))
    assert r.status == 200, await r.text()

    later = datetime.now(UTC) + timedelta(days=2)  # the session's time is up
    expiry = CheckoutSessions(db, clock=lambda: later)
    follower = ExpiryRacesTheBatch(
        DeliveryProcessor(Billing.create(db), handlers=HANDLERS), expiry.expire_due
    )
    handled = 0

    async def delivery_processed() -> bool:  # once no other transaction holds the horizon back
        nonlocal handled
        handled += await catch_up_once(db, follower)
        return handled > 0

    await eventually(delivery_processed)

    live = await db.fetchval("SELECT status FROM checkout_sessions WHERE session_id = $1", session)
    assert live == "completed"
    conn = await DatabaseAccess.of(settings, SCHEMA).connect_owner()
    try:
        await rebuild(conn, SCHEMA, ALL["checkout_sessions"])
    finally:
        await conn.close()
    rebuilt = await db.fetchval("SELECT status FROM checkout_sessions WHERE session_id = $1", session)
    assert rebuilt == live
