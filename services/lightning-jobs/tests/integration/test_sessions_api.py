"""Seed 002's sessions through the app: deposit, activation, requests debited at their actual cost,
pause, top-up, resume, idle expiry with the balance owed back; macaroons; concurrent requests on a
small balance. The fixed pricing of conftest: eval 10 sats, work quoted 100, actual one sat a token
(so a request may cost up to 110; the minimum balance is the eval fee, 10)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from aiohttp.test_utils import TestClient, TestServer

from lf_eventstore import utc_now
from lf_testing.waiting import eventually
from lightning_jobs.adapters.macaroons import SessionMacaroons
from lightning_jobs.adapters.stub import stub_invoice
from lightning_jobs.app import create_app
from lightning_jobs.domain.verdict import evaluation_prompt
from lightning_jobs.http.keys import SESSION_FLOW, STUB
from lightning_jobs.projections.ledger import EVAL_REVENUE, LIGHTNING, WORK_REVENUE
from lightning_jobs.settings import DEV_MACAROON_ROOT_KEY

EVAL, QUOTE = 10, 100


class Sessions:
    def __init__(self, api: TestClient) -> None:
        self.api = api

    async def open(self, amount_sats: int) -> dict[str, Any]:
        response = await self.api.post("/api/sessions", json={"amount_sats": amount_sats})
        assert response.status == 201, await response.text()
        return await response.json()

    async def get(self, session_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/api/sessions/{session_id}")
        assert response.status == 200, await response.text()
        return await response.json()

    async def pay(self, invoice: dict[str, Any]) -> None:
        response = await self.api.post(f"/api/dev/stub/pay/{invoice['paymentHash']}")
        assert response.status == 200, await response.text()

    async def until(self, session_id: str, state: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def there() -> bool:
            seen.clear()
            seen.update(await self.get(session_id))
            return seen["state"] == state

        await eventually(there, timeout=15)
        return seen

    async def active(self, amount_sats: int) -> dict[str, Any]:
        opened = await self.open(amount_sats)
        await self.pay(opened["invoice"])
        return await self.until(opened["sessionId"], "active")

    async def request(self, session_id: str, macaroon: str | None, text: str = "a haiku about sats"):
        headers = {"Authorization": f"Bearer {macaroon}"} if macaroon is not None else {}
        return await self.api.post(
            f"/api/sessions/{session_id}/request", json={"request": text}, headers=headers
        )

    async def refund(self, session_id: str, macaroon: str, invoice: str):
        return await self.api.post(
            f"/api/sessions/{session_id}/refund",
            json={"invoice": invoice},
            headers={"Authorization": f"Bearer {macaroon}"},
        )

    async def topup(self, session_id: str, macaroon: str, amount_sats: int):
        return await self.api.post(
            f"/api/sessions/{session_id}/topup",
            json={"amount_sats": amount_sats},
            headers={"Authorization": f"Bearer {macaroon}"},
        )


def long_work(request: str, words: int):
    """The fake AI accepts ``request`` and answers its work with ``words`` words."""
    accepted = json.dumps({"accepted": True, "reason": "fine"})
    return lambda prompt: accepted if prompt == evaluation_prompt(request) else " ".join(["sat"] * words)


async def test_a_session_runs_pauses_is_topped_up_and_resumes(api, proxy, ledger):
    sessions = Sessions(api)
    for amount in (99, 10_001):
        refused = await api.post("/api/sessions", json={"amount_sats": amount})
        assert refused.status == 400 and "error" in await refused.json()

    opened = await sessions.open(140)
    assert opened["state"] == "awaiting_payment" and opened["invoice"]["amountSats"] == 140
    waiting = await sessions.get(opened["sessionId"])
    assert waiting["state"] == "awaiting_payment" and "macaroon" not in waiting
    assert (await sessions.request(opened["sessionId"], None)).status == 401

    await sessions.pay(opened["invoice"])
    session = await sessions.until(opened["sessionId"], "active")  # the watcher (or this GET) activates it
    assert session["balanceSats"] == 140 and session["minimumBalanceSats"] == EVAL
    assert "invoice" not in session and session["expiresAt"]
    sid, macaroon = session["sessionId"], session["macaroon"]

    done = await sessions.request(sid, macaroon, "a haiku about sats")
    assert done.status == 200, await done.text()
    body = await done.json()
    actual = 10 + len(body["result"].split())  # the fake's usage: 10 in, a token a word out
    assert body["state"] == "complete"
    assert body["debitedSats"] == EVAL + actual == body["cost"]["totalSats"]
    assert body["balanceRemaining"] == 140 - EVAL - actual

    proxy.reply = long_work("an essay", 500)  # costs more than its quote: the debit stops at the quote
    long = await (await sessions.request(sid, macaroon, "an essay")).json()
    assert long["debitedSats"] == EVAL + QUOTE
    paused = await sessions.get(sid)
    assert paused["balanceSats"] == 140 - EVAL - actual - EVAL - QUOTE < EVAL
    assert paused["state"] == "paused" and paused["macaroon"]
    assert (await sessions.request(sid, macaroon)).status == 402

    topup = await sessions.topup(sid, macaroon, 200)
    assert topup.status == 200, await topup.text()
    invoice = (await topup.json())["topup"]
    assert invoice["amountSats"] == 200
    assert (await sessions.topup(sid, macaroon, 300)).status == 409  # one pending top-up at a time
    assert (await sessions.get(sid))["pendingTopup"] == invoice
    await sessions.pay(invoice)
    resumed = await sessions.until(sid, "active")
    assert resumed["balanceSats"] == paused["balanceSats"] + 200 and "pendingTopup" not in resumed
    proxy.reply = lambda prompt: json.dumps({"accepted": False, "reason": "no"})
    rejected = await (await sessions.request(sid, macaroon, "something else")).json()
    assert rejected["state"] == "rejected" and rejected["debitedSats"] == EVAL  # the eval fee still paid

    balances = await ledger.balances(sid)
    spent = EVAL + actual + EVAL + QUOTE + EVAL
    assert balances[f"session:{sid}:balance"] == 340 - spent == (await sessions.get(sid))["balanceSats"]
    assert balances[LIGHTNING] == -340
    assert balances[EVAL_REVENUE] == 3 * EVAL and balances[WORK_REVENUE] == actual + QUOTE


async def test_a_foreign_tampered_or_expired_macaroon_is_401(api, ledger):
    sessions = Sessions(api)
    mine, theirs = await sessions.active(200), await sessions.active(200)
    sid = mine["sessionId"]
    expired = SessionMacaroons(DEV_MACAROON_ROOT_KEY, timedelta(hours=1)).mint(
        mine["sessionId"], utc_now() - timedelta(hours=2)
    )
    tampered = mine["macaroon"][:-4] + ("AAAA" if not mine["macaroon"].endswith("AAAA") else "BBBB")
    for macaroon in (theirs["macaroon"], tampered, expired, "garbage"):
        response = await sessions.request(sid, macaroon)
        assert response.status == 401, macaroon
        assert (await response.json())["error"]
        assert (await sessions.topup(sid, macaroon, 100)).status == 401
    assert (await sessions.get(sid))["balanceSats"] == 200  # nothing was debited
    assert (await sessions.request(sid, mine["macaroon"])).status == 200


async def test_concurrent_requests_on_a_small_balance_never_overdraw(api, proxy, ledger):
    sessions = Sessions(api)
    proxy.delay = 0.05  # requests overlap
    session = await sessions.active(300)
    responses = await asyncio.gather(
        *(sessions.request(session["sessionId"], session["macaroon"]) for _ in range(12))
    )
    statuses = [r.status for r in responses]
    assert set(statuses) <= {200, 402} and 402 in statuses
    debited = sum([(await r.json())["debitedSats"] for r in responses if r.status == 200])
    after = await sessions.get(session["sessionId"])
    assert after["balanceSats"] == 300 - debited >= 0
    # Each started only when what the running ones held left room for its 110 sats at most: never
    # more than two at once on 300 sats (without the reservations all twelve would have run).
    assert proxy.most_in_flight <= 2
    assert sum(1 for status in statuses if status == 200) >= 2


async def test_an_idle_session_expires_owing_its_balance_back(settings, pricing, ledger):
    idle = settings.model_copy(update={"session_idle_seconds": 2.0})
    async with TestClient(TestServer(create_app(idle, pricing=pricing))) as api:
        sessions = Sessions(api)
        session = await sessions.active(150)
        expired = await sessions.until(session["sessionId"], "expired")
        assert expired["balanceSats"] == 0 and expired["owedSats"] == 150 and "macaroon" not in expired
        gone = await sessions.request(session["sessionId"], session["macaroon"])
        assert gone.status == 410
        assert (await sessions.topup(session["sessionId"], session["macaroon"], 100)).status == 409
        balances = await ledger.balances(session["sessionId"])
        assert balances[f"session:{session['sessionId']}:refund_owed"] == 150
        assert balances[f"session:{session['sessionId']}:balance"] == 0

        # Claimed like a job's refund, with the session's last macaroon (its expiry not checked).
        sid, macaroon = session["sessionId"], session["macaroon"]
        assert (await sessions.refund(sid, macaroon, stub_invoice(149))).status == 400
        other = await sessions.active(100)
        assert (await sessions.refund(sid, other["macaroon"], stub_invoice(150))).status == 401
        claims = await asyncio.gather(*(sessions.refund(sid, macaroon, stub_invoice(150)) for _ in range(5)))
        assert sorted(c.status for c in claims) == [200, 409, 409, 409, 409]  # paid once
        assert [amount for _, amount in await api.server.app[STUB].payments()] == [150]
        after = await sessions.get(sid)
        assert after["refundState"] == "paid" and after["owedSats"] == 150
        balances = await ledger.balances(sid)
        assert balances[f"session:{sid}:refund_owed"] == 0
        assert balances[LIGHTNING] == 0  # 150 in, 150 back out
        assert (await sessions.refund(sid, macaroon, stub_invoice(150))).status == 409


async def test_a_request_whose_process_died_has_its_reservation_released_after_its_lease(
    settings, pricing, ledger, db
):
    short = settings.model_copy(update={"step_lease_seconds": 1.0})
    async with TestClient(TestServer(create_app(short, pricing=pricing))) as api:
        sessions = Sessions(api)
        session = await sessions.active(150)
        sid = UUID(session["sessionId"])
        # A request reserved by a process that died before settling (the reservation command alone).
        flow = api.server.app[SESSION_FLOW]
        await flow.sessions.on_session(
            sid, lambda d, s: s.start_request(uuid4(), 110, d.now, flow.idle, flow.lease), {"actor": "test"}
        )
        assert (await sessions.request(session["sessionId"], session["macaroon"])).status == 402

        async def released_by_the_watcher() -> bool:  # nobody asks: no GET, no request
            open_requests = await db.fetchval("SELECT open_requests FROM sessions WHERE session_id = $1", sid)
            return open_requests == 0

        # The watcher releases it once its lease has passed, for nothing: the session runs again.
        await eventually(released_by_the_watcher, timeout=15)
        assert (await sessions.get(session["sessionId"]))["balanceSats"] == 150
        assert (await sessions.request(session["sessionId"], session["macaroon"])).status == 200
