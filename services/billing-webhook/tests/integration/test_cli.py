"""The operator's commands: deliveries list/show/replay/send, migrate, projections rebuild."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from lf_contracts.events import CreditsPurchasedV1
from lf_testing.fakes import lemonsqueezy as ls

PURCHASED = CreditsPurchasedV1.routing_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def run_cli(settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DB_ROLE": settings.db_role,
        "DB_OWNER_ROLE": settings.db_owner_role,
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "billing_webhook", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_a_failed_delivery_is_listed_shown_and_once_replayed_processed(billing, published, lenser):
    await billing.pack("v-100", credits=100)
    session = await billing.session(lenser)
    # Bought a variant the catalogue does not know yet: processing fails, LemonSqueezy got its 200.
    data = await billing.accepted(ls.order(41, session_id=session, variant_id="v-new", total=900))
    await billing.settled()
    delivery_id = data["deliveryId"]

    code, out = await run_cli(billing.settings, "deliveries", "list", "--failed")
    assert code == 0
    [line] = out.splitlines()[1:]
    assert line.startswith(delivery_id[:16]) and "order_created" in line and "VariantNotFound" in line

    code, out = await run_cli(billing.settings, "deliveries", "show", delivery_id[:10])
    shown = json.loads(out)
    assert code == 0 and shown["delivery_id"] == delivery_id
    assert shown["payload"]["data"]["id"] == "41"
    assert [h["type"] for h in shown["history"]] == ["DeliveryReceived", "DeliveryFailed"]

    await billing.pack("v-new", credits=900)
    code, out = await run_cli(billing.settings, "deliveries", "replay", delivery_id)
    assert code == 0 and "replay requested" in out
    [purchase] = await published.wait_for(PURCHASED, 1)
    assert (purchase.body["orderId"], purchase.body["credits"]) == ("41", 900)
    await billing.settled()
    row = await billing.delivery(delivery_id)
    assert (row["status"], row["outcome"], row["attempts"]) == ("processed", "applied", 2)


async def test_a_resend_of_a_failed_delivery_processes_it_again(billing, published, lenser):
    await billing.pack("v-100")
    session = await billing.session(lenser)
    body = ls.encode(ls.order(42, session_id=session, variant_id="v-new", total=900))
    await billing.accepted(body)
    await billing.settled()
    await billing.pack("v-new", credits=900)
    assert (await billing.accepted(body))["duplicate"] is True
    [purchase] = await published.wait_for(PURCHASED, 1)
    assert purchase.body["credits"] == 900


async def test_deliveries_send_signs_an_example_file_and_the_webhook_credits_it(billing, published, lenser):
    await billing.pack("dev-100", credits=100, price_cents=100)
    session = await billing.session(lenser, "dev-100")
    url = str(billing.api.make_url("/webhook/lemonsqueezy"))
    example = str(EXAMPLES / "order_created.json")
    code, out = await run_cli(
        billing.settings,
        "deliveries",
        "send",
        example,
        "--url",
        url,
        "--secret",
        billing.settings.lemonsqueezy_webhook_secret,
        "--session",
        session,
    )
    assert code == 0 and out.startswith("200 ")
    [purchase] = await published.wait_for(PURCHASED, 1)
    assert (purchase.body["orderId"], purchase.body["lenserId"]) == ("1001", str(lenser))
    code, out = await run_cli(
        billing.settings, "deliveries", "send", example, "--url", url, "--secret", "wrong"
    )
    assert code == 1 and out.startswith("401 ")


async def test_migrate_is_a_no_op_on_a_migrated_schema_and_rebuilt_read_models_equal_the_live_ones(
    billing, lenser
):
    await billing.pack("v-100")
    session = await billing.session(lenser)
    await billing.accepted(ls.order(43, session_id=session, variant_id="v-100", total=500))
    await billing.accepted(ls.subscription("44", session_id=session, variant_id="v-100"))
    await billing.settled()
    tables = ["credit_packs", "checkout_sessions", "deliveries", "subscriptions"]
    before = {t: sorted(tuple(r) for r in await billing.db.fetch(f"SELECT * FROM {t}")) for t in tables}
    code, out = await run_cli(billing.settings, "migrate")
    assert (code, out.strip()) == (0, "billing-webhook: 0 migration(s) applied")
    await billing.db.execute("UPDATE deliveries SET status = 'failed'")  # a read model gone wrong
    code, out = await run_cli(billing.settings, "projections", "rebuild")
    assert code == 0 and "deliveries: rebuilt, 2 rows" in out
    after = {t: sorted(tuple(r) for r in await billing.db.fetch(f"SELECT * FROM {t}")) for t in tables}
    assert after == before


async def test_replay_of_an_unknown_delivery_fails_and_an_unknown_projection_is_refused(settings):
    code, _ = await run_cli(settings, "deliveries", "replay", "feedface")
    assert code == 1
    code, _ = await run_cli(settings, "projections", "rebuild", "nope")
    assert code == 2
