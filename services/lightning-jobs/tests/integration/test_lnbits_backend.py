"""``LIGHTNING_BACKEND=lnbits``: the job flow against a fake LNbits over HTTP. Its invoices are real
BOLT11; a job moves on when LNbits says its invoice is paid (by a GET, or by the watcher with nobody
polling); a refund is paid by LNbits with the admin key; a refund payment whose answer never came is
looked up in LNbits before anything is paid again, and is paid once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from lf_testing.fakes.lnbits import FakeLNbits
from lf_testing.waiting import eventually
from lightning_jobs.adapters.bolt11 import decode
from lightning_jobs.app import create_app
from lightning_jobs.application.queries import JobQueries
from lightning_jobs.settings import LightningSettings


@pytest.fixture
async def lnbits() -> AsyncIterator[FakeLNbits]:
    fake = await FakeLNbits(network="bcrt").start()
    yield fake
    await fake.close()


@pytest.fixture
async def lnbits_api(settings, lnbits, pricing) -> AsyncIterator[TestClient]:
    on_lnbits = settings.model_copy(
        update={
            "lightning_backend": "lnbits",
            "lnbits_url": lnbits.url,
            "lnbits_invoice_key": lnbits.invoice_key,
            "lnbits_admin_key": lnbits.admin_key,
            "lnbits_pay_timeout_seconds": 0.5,
            "lightning_network": "bcrt",
            "refund_recheck_seconds": 0.3,
        }
    )
    async with TestClient(TestServer(create_app(on_lnbits, pricing=pricing))) as client:
        yield client


def test_lnbits_mode_needs_its_url_and_both_keys() -> None:
    with pytest.raises(ValidationError) as refused:
        LightningSettings(env_mode="development", lightning_backend="lnbits", lnbits_url="http://127.0.0.1:1")
    assert "LNBITS_INVOICE_KEY" in str(refused.value)
    assert "LNBITS_ADMIN_KEY" in str(refused.value)


async def completed_on_lnbits(lightning, lnbits: FakeLNbits) -> dict:
    created = await lightning.create_job("write a haiku about sats")
    eval_invoice = created["evalInvoice"]
    assert decode(eval_invoice["paymentRequest"]).payment_hash == eval_invoice["paymentHash"]
    assert lnbits.requests[-1][2]["out"] is False
    await lnbits.settle(eval_invoice["paymentHash"])
    quoted = await lightning.until(created["jobId"])
    assert quoted["state"] == "awaiting_work_payment"
    await lnbits.settle(quoted["workInvoice"]["paymentHash"])
    done = await lightning.until(created["jobId"], ("complete", "failed"))
    assert done["state"] == "complete"
    return done


async def test_a_job_moves_on_when_lnbits_says_its_invoices_are_paid_and_its_refund_is_paid_by_lnbits(
    lnbits_api, lnbits, driver, ledger
):
    lightning = driver(lnbits_api)
    done = await completed_on_lnbits(lightning, lnbits)
    owed = done["costLedger"]["refundAmountSats"]
    assert owed > 0
    refund = lnbits.make_invoice(owed)

    paid = await lightning.refund(done["jobId"], refund.bolt11)

    assert paid.status == 200, await paid.text()
    assert lnbits.paid_out(refund.payment_hash) == owed  # the fake pays only with the admin key
    assert (await lightning.job(done["jobId"]))["costLedger"]["refundState"] == "paid"


async def test_the_watcher_moves_an_lnbits_job_on_with_nobody_polling(lnbits_api, lnbits, driver, db, ledger):
    created = await driver(lnbits_api).create_job()
    queries = JobQueries(db)
    await lnbits.settle(created["evalInvoice"]["paymentHash"])

    async def state() -> str:
        job = await queries.job(created["jobId"])
        assert job is not None
        return job["state"]

    async def quoted() -> bool:
        return await state() == "awaiting_work_payment"

    await eventually(quoted)


async def test_a_refund_on_another_network_is_refused_before_lnbits_is_asked(
    lnbits_api, lnbits, driver, ledger
):
    lightning = driver(lnbits_api)
    done = await completed_on_lnbits(lightning, lnbits)
    mainnet = FakeLNbits(network="bc").make_invoice(done["costLedger"]["refundAmountSats"])

    refused = await lightning.refund(done["jobId"], mainnet.bolt11)

    assert refused.status == 400
    assert lnbits.pay_attempts == []


async def test_a_refund_whose_payment_answer_never_came_is_looked_up_and_paid_once(
    lnbits_api, lnbits, driver, ledger
):
    lightning = driver(lnbits_api)
    done = await completed_on_lnbits(lightning, lnbits)
    owed = done["costLedger"]["refundAmountSats"]
    refund = lnbits.make_invoice(owed)
    lnbits.hang_after_next_payment()  # LNbits takes the payment, then never answers

    unknown = await lightning.refund(done["jobId"], refund.bolt11)
    assert unknown.status == 500
    again = await lightning.refund(done["jobId"], refund.bolt11)  # the claim holds: no second payment
    assert again.status == 409
    lnbits.recover()  # LNbits answers again: the watcher asks it what became of the payment

    async def settled() -> bool:
        return (await lightning.job(done["jobId"]))["costLedger"]["refundState"] == "paid"

    await eventually(settled)
    assert len(lnbits.pay_attempts) == 1
    assert lnbits.paid_out(refund.payment_hash) == owed
    assert (await lightning.refund(done["jobId"], refund.bolt11)).status == 409
