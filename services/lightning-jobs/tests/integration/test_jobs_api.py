"""The job flow of seed 002 through the app: eval invoice, evaluation, work invoice, work, cost
ledger; rejection; failure after payment; seed 002's shapes."""

from __future__ import annotations

import json
from uuid import uuid4

from aiohttp.test_utils import TestClient, TestServer

from lf_testing.waiting import eventually
from lightning_jobs.app import create_app
from lightning_jobs.application.flow import quote_of, work_model_of
from lightning_jobs.application.ports import WorkModel
from lightning_jobs.application.queries import JobQueries
from lightning_jobs.projections.ledger import EVAL_REVENUE, LIGHTNING, WORK_REVENUE, held, refund_owed


async def test_a_job_goes_from_its_eval_invoice_to_complete_with_its_cost_ledger(
    lightning, proxy, ledger, pricing, db
):
    EVAL_FEE_SATS = pricing.eval_fee_sats
    created = await lightning.create_job("write a haiku about sats")
    assert created["evalInvoice"]["amountSats"] == EVAL_FEE_SATS
    invoice = created["evalInvoice"]
    assert lightning.payment_hash_of(invoice["paymentRequest"]) == invoice["paymentHash"]
    waiting = await lightning.job(created["jobId"])
    assert waiting["state"] == "awaiting_eval_payment"
    assert waiting["completedAt"] is None
    assert waiting["createdAt"] == created["createdAt"]

    await lightning.pay(created["evalInvoice"])
    quoted = await lightning.until(created["jobId"])
    assert quoted["state"] == "awaiting_work_payment"
    quote = await pricing.work_fee("write a haiku about sats", "local-small")
    WORK_FEE_SATS = quote.amount_sats
    assert quoted["workInvoice"]["amountSats"] == WORK_FEE_SATS
    assert quoted["pricingBreakdown"] == {
        "estimatedCostUsd": 0.1,
        "marginPct": 20.0,
        "btcPriceUsd": 100000.0,
        "btcPriceSource": "oracle",
    }

    await lightning.pay(quoted["workInvoice"])
    done = await lightning.until(created["jobId"], ("complete", "failed"))
    assert done["state"] == "complete"
    assert done["result"] == "echo: write a haiku about sats"
    assert done["completedAt"] is not None
    tokens = 10 + len(done["result"].split())  # the fake's usage: 10 in, a token a word out
    job = await JobQueries(db).job(created["jobId"])
    model = work_model_of(job)
    assert model == WorkModel("local-small", "local")  # the WORK_MODEL the work invoice was priced on
    cost = pricing.actual_cost(quote_of(job, model), 10, tokens - 10)
    assert cost.actual_amount_sats < WORK_FEE_SATS  # so a refund is owed
    assert done["costLedger"] == {
        "actualInputTokens": 10,
        "actualOutputTokens": tokens - 10,
        "totalTokens": tokens,
        "actualCostUsd": float(cost.actual_cost_usd),
        "actualChargeUsd": float(cost.actual_charge_usd),
        "estimatedCostUsd": 0.1,
        "actualAmountSats": cost.actual_amount_sats,
        "workAmountSats": WORK_FEE_SATS,
        "refundAmountSats": WORK_FEE_SATS - cost.actual_amount_sats,
        "refundState": "pending",
        "marginPct": 20.0,
        "btcPriceUsd": 100000.0,
    }
    # Every sat in is earned or owed back; nothing stays held.
    job_id = created["jobId"]
    assert await ledger.balances(job_id) == {
        LIGHTNING: -(EVAL_FEE_SATS + WORK_FEE_SATS),
        held(job_id): 0,
        EVAL_REVENUE: EVAL_FEE_SATS,
        WORK_REVENUE: cost.actual_amount_sats,
        refund_owed(job_id): WORK_FEE_SATS - cost.actual_amount_sats,
    }
    # The evaluation and the work, each asked once, with service funding on the local provider.
    assert [(c["funding"], c["provider"], c["referenceId"]) for c in proxy.calls] == [
        ("service", "local", f"lightning:job:{job_id}:eval"),
        ("service", "local", f"lightning:job:{job_id}:work"),
    ]


async def test_a_request_the_evaluator_rejects_ends_rejected_with_its_reason_and_the_eval_fee_earned(
    lightning, proxy, ledger, pricing
):
    EVAL_FEE_SATS = pricing.eval_fee_sats
    proxy.reply = lambda prompt: json.dumps({"accepted": False, "reason": "not something text can do"})
    created = await lightning.create_job("paint my house")
    await lightning.pay(created["evalInvoice"])
    rejected = await lightning.until(created["jobId"])
    assert rejected["state"] == "rejected"
    assert rejected["reason"] == "not something text can do"
    assert "workInvoice" not in rejected and "costLedger" not in rejected
    assert await ledger.balances(created["jobId"]) == {
        LIGHTNING: -EVAL_FEE_SATS,
        held(created["jobId"]): 0,
        EVAL_REVENUE: EVAL_FEE_SATS,
    }
    assert len(proxy.calls) == 1  # no work was done


async def test_work_the_ai_refuses_after_payment_fails_the_job_and_owes_the_work_invoice_back(
    lightning, proxy, ledger, pricing
):
    proxy.fail_if = lambda prompt: 400 if prompt == "do the impossible" else None
    failed = await lightning.completed_job("do the impossible")
    assert failed["state"] == "failed"
    assert failed["errorMessage"] == "fake failure"
    work_fee_sats = (await pricing.work_fee("do the impossible", "local-small")).amount_sats
    assert failed["costLedger"] == {"refundAmountSats": work_fee_sats, "refundState": "pending"}
    assert (await ledger.balances(failed["jobId"]))[refund_owed(failed["jobId"])] == work_fee_sats


async def test_jobs_move_on_with_nobody_polling(lightning, db, ledger):
    """The watcher notices the payments: no GET between paying and the job being done."""
    created = await lightning.create_job()
    await lightning.pay(created["evalInvoice"])
    queries = JobQueries(db)

    async def state() -> str:
        job = await queries.job(created["jobId"])
        assert job is not None
        return job["state"]

    async def quoted() -> bool:
        return await state() == "awaiting_work_payment"

    await eventually(quoted)
    job = await queries.job(created["jobId"])
    assert job is not None
    await lightning.pay({"paymentHash": job["work_payment_hash"]})

    async def complete() -> bool:
        return await state() == "complete"

    await eventually(complete)


async def test_answers_are_seed_002_shapes(api, ledger):
    healthz = await api.get("/api/healthz")
    assert (healthz.status, await healthz.json()) == (200, {"status": "ok"})

    missing = await api.get(f"/api/jobs/{uuid4()}")
    assert (missing.status, await missing.json()) == (404, {"error": "Job not found"})
    not_an_id = await api.get("/api/jobs/not-a-job")
    assert not_an_id.status == 404

    empty = await api.post("/api/jobs", json={"request": ""})
    assert empty.status == 400
    assert set(await empty.json()) == {"error"}
    assert "request" in (await empty.json())["error"]

    no_route = await api.get("/api/nothing-here")
    assert no_route.status == 404
    assert set(await no_route.json()) == {"error"}

    unknown_invoice = await api.post(f"/api/dev/stub/pay/{'ab' * 32}")
    assert (unknown_invoice.status, await unknown_invoice.json()) == (
        404,
        {"error": "No stub invoice with this payment hash"},
    )


async def test_the_dev_payment_route_does_not_exist_in_production(settings, pricing, ledger):
    production = settings.model_copy(update={"env_mode": "production", "platform_api_key": "p" * 40})
    async with TestClient(TestServer(create_app(production, background=False, pricing=pricing))) as api:
        created = await (await api.post("/api/jobs", json={"request": "hello"})).json()

        paid = await api.post(f"/api/dev/stub/pay/{created['evalInvoice']['paymentHash']}")

        assert paid.status == 404
        assert set(await paid.json()) == {"error"}
        assert (await (await api.get(f"/api/jobs/{created['jobId']}")).json())[
            "state"
        ] == "awaiting_eval_payment"
