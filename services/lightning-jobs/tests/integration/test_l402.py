"""L402 on ``POST /api/l402/request``, against a fake LNbits (its invoices are real BOLT11 and the
payer learns the preimage): 402 with the challenge, then the token answers the request once; a
tampered or foreign macaroon, a wrong preimage, an unpaid invoice, another request, a reused token
are refused. The fixed pricing of conftest: the price is the eval fee 10 + the work quote 100."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymacaroons import Macaroon

from lf_testing.fakes.lnbits import FakeLNbits
from lightning_jobs.adapters.bolt11 import decode
from lightning_jobs.adapters.macaroons import L402Macaroons
from lightning_jobs.app import create_app
from lightning_jobs.projections.ledger import EVAL_REVENUE, LIGHTNING, WORK_REVENUE

PATH = "/api/l402/request"
REQUEST = {"request": "write a haiku about sats"}
CHALLENGE = re.compile(r'^L402 macaroon="(?P<macaroon>[^"]+)", invoice="(?P<invoice>[^"]+)"$')


@pytest.fixture
async def lnbits() -> AsyncIterator[FakeLNbits]:
    fake = await FakeLNbits(network="bcrt").start()
    yield fake
    await fake.close()


def on_lnbits(settings, lnbits: FakeLNbits, pricing, **more: Any) -> TestClient:
    """The app on the fake LNbits (``more``: other settings)."""
    update = {
        "lightning_backend": "lnbits",
        "lnbits_url": lnbits.url,
        "lnbits_invoice_key": lnbits.invoice_key,
        "lnbits_admin_key": lnbits.admin_key,
        "lightning_network": "bcrt",
        **more,
    }
    return TestClient(TestServer(create_app(settings.model_copy(update=update), pricing=pricing)))


@pytest.fixture
async def l402_api(settings, lnbits, pricing) -> AsyncIterator[TestClient]:
    async with on_lnbits(settings, lnbits, pricing) as client:
        yield client


async def challenge(api: TestClient, body: dict[str, Any] = REQUEST) -> tuple[str, str]:
    response = await api.post(PATH, json=body)
    assert response.status == 402, await response.text()
    assert (await response.json())["error"]
    found = CHALLENGE.fullmatch(response.headers["WWW-Authenticate"])
    assert found, response.headers["WWW-Authenticate"]
    return found["macaroon"], found["invoice"]


async def paid_token(api: TestClient, lnbits: FakeLNbits) -> tuple[str, str]:
    """A challenge's macaroon and the preimage its payer learns by paying the invoice."""
    macaroon, invoice = await challenge(api)
    payment_hash = decode(invoice).payment_hash
    await lnbits.settle(payment_hash)
    return macaroon, lnbits.invoices[payment_hash].made.preimage


def l402(macaroon: str, preimage: str) -> dict[str, str]:
    return {"Authorization": f"L402 {macaroon}:{preimage}"}


async def test_a_paid_token_answers_its_request_once_and_the_price_is_earned(l402_api, lnbits, proxy, ledger):
    macaroon, invoice = await challenge(l402_api)
    assert decode(invoice).amount_sats == 110  # the eval fee and the work quote
    payment_hash = decode(invoice).payment_hash
    await lnbits.settle(payment_hash)
    preimage = lnbits.invoices[payment_hash].made.preimage

    answered = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))

    assert answered.status == 200, await answered.text()
    body = await answered.json()
    assert body == {"state": "complete", "result": "echo: write a haiku about sats", "amountSats": 110}
    assert len(proxy.calls) == 2  # the evaluation and the work
    balances = await ledger.balances()
    assert (balances[LIGHTNING], balances[EVAL_REVENUE], balances[WORK_REVENUE]) == (-110, 10, 100)


async def test_a_token_presented_again_after_its_answer_is_answered_the_same_and_runs_nothing(
    l402_api, lnbits, proxy, ledger
):
    """The client whose connection dropped presents it again and gets what it paid for."""
    macaroon, preimage = await paid_token(l402_api, lnbits)
    first = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))
    assert first.status == 200, await first.text()

    again = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))

    assert again.status == 200, await again.text()
    assert await again.json() == await first.json()
    assert len(proxy.calls) == 2  # nothing run again
    balances = await ledger.balances()
    assert balances[LIGHTNING] == -110  # nothing held or earned again
    other = await l402_api.post(PATH, json={"request": "another request"}, headers=l402(macaroon, preimage))
    assert other.status == 401  # the token answers only the request it was bought for


async def test_concurrent_presentations_of_one_token_are_answered_once(l402_api, lnbits, proxy, ledger):
    macaroon, preimage = await paid_token(l402_api, lnbits)
    proxy.delay = 0.2

    answers = await asyncio.gather(
        *(l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage)) for _ in range(5))
    )

    # One runs it; the others meet its claim (409) or, once it is answered, its answer (200).
    assert sorted(answer.status for answer in answers)[0] == 200
    assert {answer.status for answer in answers} <= {200, 409}
    assert len(proxy.calls) == 2


async def test_a_wrong_preimage_is_401(l402_api, lnbits, proxy, ledger):
    macaroon, _ = await paid_token(l402_api, lnbits)

    for preimage in ("11" * 32, "not-hex", "ab"):
        refused = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))
        assert refused.status == 401, preimage
    assert proxy.calls == []


async def test_a_tampered_or_foreign_macaroon_is_401(l402_api, lnbits, proxy, ledger):
    macaroon, preimage = await paid_token(l402_api, lnbits)
    original = Macaroon.deserialize(macaroon)
    # Another price: the caveats are signed, so the signature no longer holds.
    tampered = Macaroon.deserialize(macaroon)
    tampered.caveats[3].caveat_id = "amount_sats = 1"
    # A caveat added (a macaroon may be attenuated): one we do not know is refused.
    attenuated = Macaroon.deserialize(macaroon)
    attenuated.add_first_party_caveat("amount_sats = 1")
    # The same offer signed with another root key.
    foreign_key = L402Macaroons("another-root-key-" + "x" * 32, timedelta(hours=1)).key
    foreign = Macaroon(location=original.location, identifier=original.identifier, key=foreign_key)
    for caveat in original.first_party_caveats():
        foreign.add_first_party_caveat(caveat.caveat_id)

    for bad in (tampered.serialize(), attenuated.serialize(), foreign.serialize(), "garbage"):
        refused = await l402_api.post(PATH, json=REQUEST, headers=l402(bad, preimage))
        assert refused.status == 401
    assert proxy.calls == []


async def test_a_token_is_good_only_for_the_request_it_was_bought_for(l402_api, lnbits, proxy, ledger):
    macaroon, preimage = await paid_token(l402_api, lnbits)

    refused = await l402_api.post(
        PATH, json={"request": "a much longer and dearer request"}, headers=l402(macaroon, preimage)
    )

    assert refused.status == 401
    assert proxy.calls == []


async def test_a_token_whose_invoice_is_unpaid_is_401_even_with_its_preimage(l402_api, lnbits, proxy, ledger):
    macaroon, invoice = await challenge(l402_api)
    preimage = lnbits.invoices[decode(invoice).payment_hash].made.preimage  # leaked, not paid

    refused = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))

    assert refused.status == 401
    assert proxy.calls == []


async def test_a_token_whose_run_failed_transiently_is_answered_when_presented_again_under_a_new_reference(
    l402_api, lnbits, proxy, ledger
):
    """execution-proxy answers a reference whose execution failed with that failure for ever: the
    next presentation asks the failed step under a new one, and the paid request is answered."""
    macaroon, preimage = await paid_token(l402_api, lnbits)
    proxy.fail_next = [502]

    failed = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))
    assert failed.status == 200 and (await failed.json())["state"] == "failed"
    answered = await l402_api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))

    assert answered.status == 200, await answered.text()
    assert (await answered.json())["state"] == "complete"
    references = [call["referenceId"] for call in proxy.calls]
    assert len(references) == 3 and len(set(references)) == 3, references
    assert references[0].endswith(":eval") and references[1].endswith(":eval:2"), references


async def test_a_token_paid_before_its_expiry_is_answered_when_presented_after_it(
    settings, lnbits, pricing, proxy, ledger
):
    """The expiry bounds the offer, not a paid token: nothing else records an L402 payment."""
    async with on_lnbits(settings, lnbits, pricing, macaroon_ttl_seconds=0.5) as api:
        macaroon, preimage = await paid_token(api, lnbits)
        await asyncio.sleep(0.6)  # past the macaroon's expiry

        answered = await api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))

        assert answered.status == 200, await answered.text()
        assert (await answered.json())["state"] == "complete"


async def test_an_unpaid_token_past_its_expiry_is_401_expired(settings, lnbits, pricing, proxy, ledger):
    async with on_lnbits(settings, lnbits, pricing, macaroon_ttl_seconds=0.5) as api:
        macaroon, invoice = await challenge(api)
        preimage = lnbits.invoices[decode(invoice).payment_hash].made.preimage  # leaked, not paid
        await asyncio.sleep(0.6)

        refused = await api.post(PATH, json=REQUEST, headers=l402(macaroon, preimage))

        assert refused.status == 401
        assert "expired" in (await refused.json())["error"]
    assert proxy.calls == []
