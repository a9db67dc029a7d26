"""Paying, polling and watching at once never runs a step twice: 20 concurrent pollers and the
invoice watcher on one paid invoice, each step asked of execution-proxy once."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import UUID

from aiohttp.test_utils import TestClient, TestServer

from lightning_jobs.app import create_app
from lightning_jobs.http.keys import FLOW


async def test_twenty_pollers_and_the_watcher_run_each_step_once(lightning, proxy, ledger):
    proxy.delay = 0.3  # a step in flight while every poller looks
    created = await lightning.create_job()
    job_id = created["jobId"]

    await lightning.pay(created["evalInvoice"])
    seen = await asyncio.gather(*(lightning.job(job_id) for _ in range(20)))
    assert {view["state"] for view in seen} <= {
        "awaiting_eval_payment",
        "evaluating",
        "awaiting_work_payment",
    }
    quoted = await lightning.until(job_id)
    await lightning.pay(quoted["workInvoice"])
    await asyncio.gather(*(lightning.job(job_id) for _ in range(20)))
    done = await lightning.until(job_id, ("complete", "failed"))

    assert done["state"] == "complete"
    asked = Counter(call["referenceId"] for call in proxy.calls)
    assert asked == {f"lightning:job:{job_id}:eval": 1, f"lightning:job:{job_id}:work": 1}


async def test_two_replicas_polling_one_paid_invoice_run_the_step_once(
    lightning, proxy, settings, pricing, ledger
):
    """Another process's pollers meet on the job's stream lock, not on anything in memory."""
    proxy.delay = 0.3
    async with TestClient(TestServer(create_app(settings, pricing=pricing))) as other:
        created = await lightning.create_job()
        job_id = created["jobId"]
        await lightning.pay(created["evalInvoice"])
        await asyncio.gather(
            *(lightning.job(job_id) for _ in range(10)),
            *(other.get(f"/api/jobs/{job_id}") for _ in range(10)),
        )
        await lightning.until(job_id)

    assert Counter(call["referenceId"] for call in proxy.calls) == {f"lightning:job:{job_id}:eval": 1}


async def test_an_execution_proxy_outage_delays_a_step_and_never_fails_it(
    proxy, settings, pricing, ledger, driver
):
    """The claimant learns nothing (503): its claim lapses and the step is claimed again."""
    quick = settings.model_copy(update={"step_lease_seconds": 0.5})
    async with TestClient(TestServer(create_app(quick, pricing=pricing))) as api:
        lightning = driver(api)
        proxy.fail_next = [503]
        created = await lightning.create_job()
        await lightning.pay(created["evalInvoice"])

        quoted = await lightning.until(created["jobId"])

    assert quoted["state"] == "awaiting_work_payment"
    assert len(proxy.calls) == 2  # the one the outage refused, then the one after the lease


async def test_a_step_whose_claimant_died_is_claimed_again_after_its_lease_and_runs_once(
    proxy, settings, pricing, ledger, driver
):
    """A claimant that crashed between its claim and its report (here: a claim taken through the use
    case and never run) leaves the step to lapse; the watcher claims it again, and execution-proxy
    is asked under the step's one reference id."""
    quick = settings.model_copy(update={"step_lease_seconds": 0.5})
    async with TestClient(TestServer(create_app(quick, pricing=pricing))) as api:
        lightning = driver(api)
        created = await lightning.create_job()
        # Claimed as a poller that saw the payment would (before the invoice is paid here, so that
        # neither the watcher nor a GET claims it first), and then "dies" holding the claim.
        flow = api.server.app[FLOW]
        claim = await flow.jobs.eval_paid(UUID(created["jobId"]), metadata={"actor": "test"})
        assert claim is not None
        await lightning.pay(created["evalInvoice"])

        quoted = await lightning.until(created["jobId"])

    assert quoted["state"] == "awaiting_work_payment"
    assert Counter(call["referenceId"] for call in proxy.calls) == {claim.reference_id: 1}


async def test_a_transient_provider_failure_is_retried_under_a_new_reference_and_the_job_completes(
    proxy, settings, pricing, ledger, driver
):
    """execution-proxy answers a reference whose execution failed with that failure for ever: the
    step's next claim asks under a new one, and the job goes on to complete."""
    quick = settings.model_copy(update={"step_lease_seconds": 0.5})
    async with TestClient(TestServer(create_app(quick, pricing=pricing))) as api:
        lightning = driver(api)
        proxy.fail_next = [502]
        done = await lightning.completed_job()

    assert done["state"] == "complete", done
    job_id = done["jobId"]
    assert [call["referenceId"] for call in proxy.calls] == [
        f"lightning:job:{job_id}:eval",
        f"lightning:job:{job_id}:eval:2",
        f"lightning:job:{job_id}:work",
    ]
