"""LNbits pushes our paid invoices (``LNBITS_WEBHOOK_URL``, ``POST /api/lnbits/webhook``): a job and
a session move on at the push, with nobody polling and the watcher's interval an hour long. The
push is never believed: a forged one for an unpaid invoice, an unknown hash, a duplicate delivery
change nothing (LNbits is asked; only its word moves anything)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer, unused_port

from lf_testing.fakes.lnbits import FakeLNbits
from lf_testing.waiting import eventually
from lightning_jobs.app import create_app
from lightning_jobs.application.queries import JobQueries
from lightning_jobs.application.sessions import SessionQueries

WEBHOOK = "/api/lnbits/webhook"


@pytest.fixture(params=["object", "json_string"])
async def lnbits(request) -> AsyncIterator[FakeLNbits]:
    """Both of LNbits' webhook bodies: a JSON object (older) and the JSON as a JSON string (newer)."""
    fake = await FakeLNbits(network="bcrt", webhook_encoding=request.param).start()
    yield fake
    await fake.close()


@pytest.fixture
async def pushed_api(settings, lnbits, pricing) -> AsyncIterator[TestClient]:
    """The app on LNbits with its webhook URL set, and a watcher that would next look in an hour."""
    port = unused_port()
    on_lnbits = settings.model_copy(
        update={
            "lightning_backend": "lnbits",
            "lnbits_url": lnbits.url,
            "lnbits_invoice_key": lnbits.invoice_key,
            "lnbits_admin_key": lnbits.admin_key,
            "lightning_network": "bcrt",
            "lnbits_webhook_url": f"http://127.0.0.1:{port}{WEBHOOK}",
            "watch_interval_seconds": 3600,
        }
    )
    server = TestServer(create_app(on_lnbits, pricing=pricing), host="127.0.0.1", port=port)
    async with TestClient(server) as client:
        yield client


async def job_state(db, job_id: str) -> str:
    job = await JobQueries(db).job(job_id)
    assert job is not None
    return job["state"]


async def reached(db, job_id: str, state: str) -> dict[str, Any]:
    """Read the read model (never ``GET /api/jobs/{id}``, which would advance the job itself)."""

    async def there() -> bool:
        return await job_state(db, job_id) == state

    await eventually(there, timeout=15)
    job = await JobQueries(db).job(job_id)
    assert job is not None
    return job


async def test_a_job_moves_on_at_lnbits_pushes_with_nobody_polling(
    pushed_api, lnbits, driver, db, proxy, ledger
):
    created = await driver(pushed_api).create_job()
    eval_hash = created["evalInvoice"]["paymentHash"]
    assert lnbits.invoices[eval_hash].webhook == str(pushed_api.make_url(WEBHOOK))

    await lnbits.settle(eval_hash)
    quoted = await reached(db, created["jobId"], "awaiting_work_payment")
    await lnbits.settle(quoted["work_payment_hash"])
    await reached(db, created["jobId"], "complete")

    assert lnbits.webhook_statuses == {eval_hash: 200, quoted["work_payment_hash"]: 200}
    asked = Counter(call["referenceId"] for call in proxy.calls)
    assert asked == {f"lightning:job:{created['jobId']}:eval": 1, f"lightning:job:{created['jobId']}:work": 1}


async def test_a_duplicate_push_changes_nothing(pushed_api, lnbits, driver, db, proxy, ledger):
    created = await driver(pushed_api).create_job()
    eval_hash = created["evalInvoice"]["paymentHash"]
    await lnbits.settle(eval_hash)
    quoted = await reached(db, created["jobId"], "awaiting_work_payment")
    await lnbits.settle(quoted["work_payment_hash"])
    done = await reached(db, created["jobId"], "complete")

    assert await lnbits.deliver_webhook(eval_hash) == 200
    assert await lnbits.deliver_webhook(quoted["work_payment_hash"]) == 200

    assert await JobQueries(db).job(created["jobId"]) == done  # not even its updated_at moved
    assert len(proxy.calls) == 2


async def test_a_forged_push_for_an_unpaid_invoice_changes_nothing(
    pushed_api, lnbits, driver, db, proxy, ledger
):
    created = await driver(pushed_api).create_job()
    eval_hash = created["evalInvoice"]["paymentHash"]
    before = await JobQueries(db).job(created["jobId"])
    forged = {"payment_hash": eval_hash, "status": "success", "amount": 10_000, "preimage": "00" * 32}

    answered = await pushed_api.post(WEBHOOK, json=forged)

    assert answered.status == 200
    assert ("GET", f"/api/v1/payments/{eval_hash}", None) in lnbits.requests  # LNbits was asked
    assert await JobQueries(db).job(created["jobId"]) == before
    assert proxy.calls == []


async def test_a_push_for_a_hash_of_no_invoice_of_ours_is_200_and_asks_nobody(pushed_api, lnbits, proxy):
    unknown = "ab" * 32

    answered = await pushed_api.post(WEBHOOK, json={"payment_hash": unknown, "status": "success"})

    assert answered.status == 200
    assert not [request for request in lnbits.requests if request[1].endswith(unknown)]
    assert proxy.calls == []


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"payment_hash": "zz"}', b"[1]", b'"{}"'])
async def test_a_body_that_is_no_lnbits_payment_is_400(pushed_api, body):
    answered = await pushed_api.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})

    assert answered.status == 400
    assert "payment_hash" in (await answered.json())["error"] or "JSON" in (await answered.json())["error"]


async def test_a_session_deposit_pushed_by_lnbits_activates_it_with_nobody_polling(
    pushed_api, lnbits, db, ledger
):
    opened = await pushed_api.post("/api/sessions", json={"amount_sats": 500})
    assert opened.status == 201
    session = await opened.json()
    deposit_hash = session["invoice"]["paymentHash"]

    await lnbits.settle(deposit_hash)

    async def active() -> bool:
        row = await SessionQueries(db).session(session["sessionId"])
        assert row is not None
        return row["state"] == "active" and row["balance_sats"] == 500

    await eventually(active, timeout=15)
    assert lnbits.webhook_statuses == {deposit_hash: 200}
