"""A crash around a refund's payment loses nothing and pays nothing twice: a claim left unsettled is
settled by what the backend says became of its payment (never by paying again)."""

from __future__ import annotations

from uuid import UUID

from aiohttp.test_utils import TestClient, TestServer

from lf_testing.waiting import eventually
from lightning_jobs.adapters.stub import stub_invoice
from lightning_jobs.app import create_app
from lightning_jobs.http.keys import FLOW, STUB
from lightning_jobs.projections.ledger import refund_owed


async def _claimed_and_left(api: TestClient, driver) -> tuple[dict, str]:
    """A completed job whose refund a process claimed and then died with (no report)."""
    lightning = driver(api)
    job = await lightning.completed_job()
    invoice = stub_invoice(job["costLedger"]["refundAmountSats"])
    payment_hash = lightning.payment_hash_of(invoice)
    await api.server.app[FLOW].jobs.claim_refund(
        UUID(job["jobId"]),
        payment_hash,
        invoice,
        job["costLedger"]["refundAmountSats"],
        metadata={"actor": "test"},
    )
    return job, invoice


async def test_a_claim_whose_payment_never_left_is_released_and_claimable_again(
    settings, pricing, driver, ledger
):
    quick = settings.model_copy(update={"refund_recheck_seconds": 0.2})
    async with TestClient(TestServer(create_app(quick, pricing=pricing))) as api:
        lightning = driver(api)
        job, invoice = await _claimed_and_left(api, driver)
        blocked = await lightning.refund(job["jobId"], invoice)
        assert blocked.status == 409  # the claim holds until the backend has been asked

        async def released() -> bool:
            return (await lightning.refund(job["jobId"], invoice)).status == 200

        await eventually(released)
        assert len(await api.server.app[STUB].payments()) == 1
        assert (await ledger.balances(job["jobId"]))[refund_owed(job["jobId"])] == 0


async def test_a_claim_whose_payment_left_before_the_crash_is_recorded_paid_and_never_paid_again(
    settings, pricing, driver, ledger
):
    quick = settings.model_copy(update={"refund_recheck_seconds": 0.2})
    async with TestClient(TestServer(create_app(quick, pricing=pricing))) as api:
        lightning = driver(api)
        job, invoice = await _claimed_and_left(api, driver)
        stub = api.server.app[STUB]
        await stub.pay(invoice, job["costLedger"]["refundAmountSats"])  # then the process died

        async def recorded_paid() -> bool:
            return (await lightning.job(job["jobId"]))["costLedger"]["refundState"] == "paid"

        await eventually(recorded_paid)
        again = await lightning.refund(job["jobId"], stub_invoice(job["costLedger"]["refundAmountSats"]))
        assert (again.status, await again.json()) == (409, {"error": "Refund already paid"})
        assert len(await stub.payments()) == 1
        assert (await ledger.balances(job["jobId"]))[refund_owed(job["jobId"])] == 0
