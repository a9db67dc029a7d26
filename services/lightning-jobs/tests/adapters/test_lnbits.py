"""LNbitsBackend against a fake LNbits speaking its wire format over HTTP: invoices made with the
invoice key and ``out: false``, refunds paid with the admin key, and every failure mapped to what the
application can do about it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from lf_testing.fakes.lnbits import FakeLNbits
from lightning_jobs.adapters.bolt11 import decode
from lightning_jobs.adapters.lnbits import InvoiceState, LNbitsBackend, PaymentState
from lightning_jobs.application.ports import BackendRefused, BackendUnavailable, InvoiceBackend
from lightning_jobs.settings import LightningSettings


@pytest.fixture
async def lnbits() -> AsyncIterator[FakeLNbits]:
    fake = await FakeLNbits(network="bcrt", balance_sats=10_000).start()
    yield fake
    await fake.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def backend_for(lnbits: FakeLNbits, http: aiohttp.ClientSession, **overrides: object) -> LNbitsBackend:
    options: dict[str, object] = {
        "url": lnbits.url,
        "invoice_key": lnbits.invoice_key,
        "admin_key": lnbits.admin_key,
        "timeout_seconds": 2.0,
        "pay_timeout_seconds": 0.5,
    }
    options.update(overrides)
    return LNbitsBackend(http, **options)  # type: ignore[arg-type]


@pytest.fixture
def backend(lnbits: FakeLNbits, http: aiohttp.ClientSession) -> LNbitsBackend:
    return backend_for(lnbits, http)


def test_lnbits_has_every_method_of_the_invoice_backend_protocol(backend: LNbitsBackend) -> None:
    assert isinstance(backend, InvoiceBackend)


async def test_an_invoice_is_created_with_the_invoice_key_and_out_false(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    created = await backend.create_invoice(250, "eval fee for job 42", expiry_seconds=900)
    method, path, body = lnbits.requests[-1]
    assert (method, path) == ("POST", "/api/v1/payments")
    assert body == {"out": False, "amount": 250, "unit": "sat", "memo": "eval fee for job 42", "expiry": 900}
    invoice = decode(created.payment_request)
    assert (invoice.amount_sats, invoice.network, invoice.payment_hash) == (250, "bcrt", created.payment_hash)
    assert invoice.expires_at - invoice.created_at == 900
    assert created.amount_sats == 250


async def test_with_a_webhook_url_every_invoice_is_created_with_it_as_lnbits_webhook(
    lnbits: FakeLNbits, http: aiohttp.ClientSession
) -> None:
    url = "https://lenserfight.example/api/lnbits/webhook"
    backend = backend_for(lnbits, http, webhook_url=url)

    created = await backend.create_invoice(250, "eval fee for job 42")

    assert lnbits.requests[-1][2]["webhook"] == url
    assert lnbits.invoices[created.payment_hash].webhook == url


def test_a_webhook_url_that_is_not_http_is_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        LightningSettings(env_mode="development", lnbits_webhook_url="ftp://lenserfight.example/hook")


async def test_an_invoice_is_pending_until_paid_then_paid_with_its_preimage(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    created = await backend.create_invoice(100, "deposit")
    assert (await backend.invoice_status(created.payment_hash)).state is InvoiceState.PENDING
    await lnbits.settle(created.payment_hash)
    status = await backend.invoice_status(created.payment_hash)
    assert status.paid
    assert status.preimage == lnbits.invoices[created.payment_hash].made.preimage


async def test_an_expired_unpaid_invoice_is_failed(lnbits: FakeLNbits, backend: LNbitsBackend) -> None:
    created = await backend.create_invoice(100, "deposit")
    lnbits.invoices[created.payment_hash].expires_at = 0
    assert (await backend.invoice_status(created.payment_hash)).state is InvoiceState.FAILED


async def test_a_webhook_is_passed_on_and_called_when_the_invoice_is_paid(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    received: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        created = await backend.create_invoice(100, "deposit", webhook_url=url)
        assert lnbits.requests[-1][2]["webhook"] == url
        await lnbits.settle(created.payment_hash)
        assert [payment["payment_hash"] for payment in received] == [created.payment_hash]
    finally:
        await runner.cleanup()


async def test_a_refund_is_paid_with_the_admin_key(lnbits: FakeLNbits, backend: LNbitsBackend) -> None:
    refund = lnbits.make_invoice(8)
    result = await backend.pay_invoice(refund.bolt11)
    assert result.state is PaymentState.SUCCEEDED
    assert result.payment_hash == refund.payment_hash
    assert lnbits.pay_attempts == [{"out": True, "bolt11": refund.bolt11}]
    assert lnbits.paid_out(refund.payment_hash) == 8
    assert lnbits.balance_sats == 10_000 - 8
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.SUCCEEDED


async def test_the_invoice_key_cannot_pay(lnbits: FakeLNbits, http: aiohttp.ClientSession) -> None:
    backend = backend_for(lnbits, http, admin_key=lnbits.invoice_key)
    refund = lnbits.make_invoice(8)
    with pytest.raises(BackendRefused) as refused:
        await backend.pay_invoice(refund.bolt11)
    assert refused.value.status == 403
    assert lnbits.paid_out(refund.payment_hash) == 0


async def test_a_wrong_key_is_refused(lnbits: FakeLNbits, http: aiohttp.ClientSession) -> None:
    backend = backend_for(lnbits, http, invoice_key="not-a-key")
    with pytest.raises(BackendRefused) as refused:
        await backend.create_invoice(100, "deposit")
    assert refused.value.status == 401


async def test_a_payment_that_fails_is_refused_and_can_be_tried_again(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.fail_payments()
    with pytest.raises(BackendRefused) as refused:
        await backend.pay_invoice(refund.bolt11)
    assert refused.value.status == 520
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.FAILED
    lnbits.recover()
    assert (await backend.pay_invoice(refund.bolt11)).state is PaymentState.SUCCEEDED
    assert lnbits.paid_out(refund.payment_hash) == 8


async def test_an_invoice_lnbits_will_not_pay_is_refused(lnbits: FakeLNbits, backend: LNbitsBackend) -> None:
    expired = lnbits.make_invoice(8, created_at=1_600_000_000)
    with pytest.raises(BackendRefused) as refused:
        await backend.pay_invoice(expired.bolt11)
    assert refused.value.status == 400


async def test_a_payment_whose_answer_is_lost_is_unknown_until_its_status_is_asked(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.lose_next_payment_answers()
    with pytest.raises(BackendUnavailable):
        await backend.pay_invoice(refund.bolt11)
    # Before any retry: LNbits did pay it, so there must be no retry.
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.SUCCEEDED
    assert lnbits.paid_out(refund.payment_hash) == 8


async def test_a_payment_that_times_out_mid_way_is_unknown_and_its_status_tells(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.hang_after_next_payment()
    with pytest.raises(BackendUnavailable):
        await backend.pay_invoice(refund.bolt11)
    lnbits.recover()
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.SUCCEEDED
    assert len(lnbits.pay_attempts) == 1


async def test_a_payment_that_never_reached_lnbits_is_unknown_to_it(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.fail_with(502)  # a proxy in front of LNbits: nothing reached it
    with pytest.raises(BackendUnavailable):
        await backend.pay_invoice(refund.bolt11)
    lnbits.recover()
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.UNKNOWN_TO_BACKEND
    assert lnbits.paid_out(refund.payment_hash) == 0


async def test_a_pending_payment_stays_pending_until_it_settles(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.leave_payments_pending()
    assert (await backend.pay_invoice(refund.bolt11)).state is PaymentState.PENDING
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.PENDING
    lnbits.finish_payment(refund.payment_hash)
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.SUCCEEDED


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_lnbits_down_is_unavailable_not_refused(
    lnbits: FakeLNbits, backend: LNbitsBackend, status: int
) -> None:
    lnbits.fail_with(status)
    with pytest.raises(BackendUnavailable):
        await backend.create_invoice(100, "deposit")


async def test_lnbits_unreachable_is_unavailable(http: aiohttp.ClientSession) -> None:
    fake = await FakeLNbits().start()
    backend = backend_for(fake, http)
    await fake.close()
    with pytest.raises(BackendUnavailable):
        await backend.invoice_status("00" * 32)


async def test_an_unknown_invoice_is_refused(backend: LNbitsBackend) -> None:
    with pytest.raises(BackendRefused) as refused:
        await backend.invoice_status("ab" * 32)
    assert refused.value.status == 404


async def test_the_fakes_decode_endpoint_reads_its_invoices(
    lnbits: FakeLNbits, http: aiohttp.ClientSession, backend: LNbitsBackend
) -> None:
    created = await backend.create_invoice(42, "decode me")
    async with http.post(f"{lnbits.url}/api/v1/payments/decode", json={"data": created.payment_request}) as r:
        assert r.status == 200
        decoded = await r.json()
    assert (decoded["amount_msat"], decoded["currency"]) == (42_000, "bcrt")
    assert decoded["payment_hash"] == created.payment_hash
    async with http.post(f"{lnbits.url}/api/v1/payments/decode", json={"data": "nonsense"}) as r:
        assert r.status == 400


async def test_the_job_flows_port_is_paid_follows_the_invoice(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    created = await backend.create_invoice(100, "eval fee")
    assert await backend.is_paid(created.payment_hash) is False
    await lnbits.settle(created.payment_hash)
    assert await backend.is_paid(created.payment_hash) is True


async def test_the_job_flows_port_pay_returns_the_hash_of_a_paid_refund(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    assert await backend.pay(refund.bolt11, 8) == refund.payment_hash
    assert lnbits.paid_out(refund.payment_hash) == 8


async def test_the_job_flows_port_never_sends_an_invoice_for_another_amount(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(9)
    with pytest.raises(BackendRefused):
        await backend.pay(refund.bolt11, 8)
    assert lnbits.pay_attempts == []


async def test_the_job_flows_port_reports_a_payment_in_flight_as_unknown(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.leave_payments_pending()
    with pytest.raises(BackendUnavailable):
        await backend.pay(refund.bolt11, 8)
    assert (await backend.payment_result(refund.payment_hash)).state is PaymentState.PENDING


async def test_the_job_flows_port_reports_a_failed_payment_as_refused(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    refund = lnbits.make_invoice(8)
    lnbits.fail_payments()
    with pytest.raises(BackendRefused):
        await backend.pay(refund.bolt11, 8)
    assert lnbits.paid_out(refund.payment_hash) == 0


async def test_the_job_flows_port_payment_status_says_paid_failed_or_pending(
    lnbits: FakeLNbits, backend: LNbitsBackend
) -> None:
    never_sent = lnbits.make_invoice(8)
    assert await backend.payment_status(never_sent.payment_hash) == "failed"  # may be sent again
    paid = lnbits.make_invoice(8)
    await backend.pay(paid.bolt11, 8)
    assert await backend.payment_status(paid.payment_hash) == "paid"
    in_flight = lnbits.make_invoice(8)
    lnbits.leave_payments_pending()
    with pytest.raises(BackendUnavailable):
        await backend.pay(in_flight.bolt11, 8)
    assert await backend.payment_status(in_flight.payment_hash) == "pending"


def test_the_stub_backend_implements_the_same_port() -> None:
    from lightning_jobs.adapters.stub import StubBackend

    assert isinstance(StubBackend(pool=None), InvoiceBackend)  # type: ignore[arg-type]
