"""Refunds (seed 002's ``POST /api/jobs/{id}/refund``): a BOLT11 invoice for exactly what is owed,
paid at most once, also when claimed twice at once."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from lightning_jobs.adapters.stub import stub_invoice
from lightning_jobs.http.keys import STUB
from lightning_jobs.projections.ledger import LIGHTNING, refund_owed


async def test_the_refund_owed_is_paid_to_an_invoice_for_exactly_that_amount(lightning, api, ledger, pricing):
    job = await lightning.completed_job()
    owed = job["costLedger"]["refundAmountSats"]
    invoice = stub_invoice(owed)

    paid = await lightning.refund(job["jobId"], invoice)

    assert paid.status == 200, await paid.text()
    body = await paid.json()
    assert body["ok"] is True
    assert body["refundAmountSats"] == owed
    assert body["paymentHash"] == lightning.payment_hash_of(invoice)
    assert set(body) == {"ok", "refundAmountSats", "paymentHash", "message"}
    assert await api.server.app[STUB].payments() == [(body["paymentHash"], owed)]
    after = await lightning.job(job["jobId"])
    assert after["costLedger"]["refundState"] == "paid"
    balances = await ledger.balances(job["jobId"])
    assert balances[refund_owed(job["jobId"])] == 0
    # What came in less what went back out: the eval fee and the actual work charge.
    assert -balances[LIGHTNING] == job["costLedger"]["workAmountSats"] - owed + pricing.eval_fee_sats


async def test_a_refund_is_paid_once_however_often_it_is_claimed(lightning, api, ledger):
    job = await lightning.completed_job()
    owed = job["costLedger"]["refundAmountSats"]
    assert (await lightning.refund(job["jobId"], stub_invoice(owed))).status == 200

    again = await lightning.refund(job["jobId"], stub_invoice(owed))

    assert again.status == 409
    assert await again.json() == {"error": "Refund already paid"}
    assert len(await api.server.app[STUB].payments()) == 1


async def test_concurrent_claims_pay_the_refund_once(lightning, api, ledger):
    job = await lightning.completed_job()
    owed = job["costLedger"]["refundAmountSats"]

    answers = await asyncio.gather(*(lightning.refund(job["jobId"], stub_invoice(owed)) for _ in range(10)))

    assert sorted(answer.status for answer in answers) == [200] + [409] * 9
    assert len(await api.server.app[STUB].payments()) == 1
    assert (await ledger.balances(job["jobId"]))[refund_owed(job["jobId"])] == 0


async def test_an_invoice_for_another_amount_is_refused_and_the_refund_stays_claimable(
    lightning, api, ledger
):
    job = await lightning.completed_job()
    owed = job["costLedger"]["refundAmountSats"]

    wrong = await lightning.refund(job["jobId"], stub_invoice(owed + 1))

    assert wrong.status == 400
    assert await wrong.json() == {"error": f"Invoice amount must be exactly {owed} sats (got {owed + 1})"}
    assert await api.server.app[STUB].payments() == []
    assert (await lightning.refund(job["jobId"], stub_invoice(owed))).status == 200


async def test_refund_claims_the_seed_refuses(lightning, ledger):
    job = await lightning.completed_job()
    not_bolt11 = await lightning.refund(job["jobId"], "hello")
    assert (not_bolt11.status, await not_bolt11.json()) == (400, {"error": "Invalid BOLT11 invoice"})
    missing = await lightning.api.post(f"/api/jobs/{job['jobId']}/refund", json={})
    assert missing.status == 400
    unknown = await lightning.refund(str(uuid4()), stub_invoice(5))
    assert (unknown.status, await unknown.json()) == (404, {"error": "Job not found"})

    unpaid = await lightning.create_job()
    not_complete = await lightning.refund(unpaid["jobId"], stub_invoice(5))
    assert (not_complete.status, await not_complete.json()) == (409, {"error": "Job not complete"})


async def test_no_refund_is_owed_when_the_work_cost_what_was_paid(lightning, proxy, ledger):
    proxy.reply = lambda prompt: "word " * 500  # far more tokens than the work fee covers
    job = await lightning.completed_job()
    assert job["costLedger"]["refundAmountSats"] == 0  # never negative: the charge is capped
    assert job["costLedger"]["actualAmountSats"] == job["costLedger"]["workAmountSats"]
    assert job["costLedger"]["refundState"] == "not_applicable"

    claimed = await lightning.refund(job["jobId"], stub_invoice(1))

    assert (claimed.status, await claimed.json()) == (409, {"error": "No refund owed for this job"})


async def test_a_failed_job_s_refund_is_claimed_like_a_completed_one_s(lightning, proxy, api, ledger):
    proxy.fail_if = lambda prompt: 400 if prompt == "fail me" else None
    job = await lightning.completed_job("fail me")
    owed = job["costLedger"]["refundAmountSats"]

    paid = await lightning.refund(job["jobId"], stub_invoice(owed))

    assert paid.status == 200
    assert (await ledger.balances(job["jobId"]))[refund_owed(job["jobId"])] == 0
