"""wallet-api over HTTP: the public and internal routes, their answers and their refusals."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from aiohttp import web
from aiohttp.test_utils import TestServer

from lf_testing.tokens import bearer
from lf_testing.waiting import eventually


async def code_of(response) -> str:
    return (await response.json())["error"]["code"]


async def test_a_lenser_without_a_wallet_gets_wallet_not_found(api, lenser):
    response = await api.get("/wallet/balance", headers=bearer(lenser))
    assert response.status == 404
    assert await code_of(response) == "wallet.not_found"


async def test_a_grant_opens_the_wallet_and_shows_in_the_balance(wallet, lenser):
    response = await wallet.grant(lenser, 120)
    assert response.status == 201
    body = await response.json()
    assert body["data"]["granted"] is True and body["meta"]["requestId"]
    assert await wallet.balance(lenser) == {
        "balance": 120,
        "availableBalance": 120,
        "reserved": 0,
        "lifetimeDeposits": 120,
        "lifetimeSpent": 0,
        "frozen": False,
        "limits": {"daily": None, "monthly": None},
    }


async def test_a_repeated_grant_key_grants_once_and_a_different_amount_is_a_conflict(wallet, lenser):
    assert (await wallet.grant(lenser, 50, key="promo-1")).status == 201
    assert (await wallet.grant(lenser, 50, key="promo-1")).status == 200
    conflict = await wallet.grant(lenser, 60, key="promo-1")
    assert conflict.status == 409 and await code_of(conflict) == "wallet.idempotency_conflict"
    assert (await wallet.balance(lenser))["balance"] == 50


async def test_reserve_then_capture_less_charges_the_capture_and_releases_the_rest(wallet, lenser):
    await wallet.grant(lenser, 100)
    reserved = await wallet.reserve(lenser, 40)
    assert reserved.status == 201
    reservation = (await reserved.json())["data"]
    assert (await wallet.balance(lenser))["availableBalance"] == 60
    captured = await wallet.capture(reservation["reservationId"], 25)
    assert captured.status == 200
    assert (await captured.json())["data"].items() >= {
        "status": "captured",
        "captured": 25,
        "overrun": 0,
    }.items()
    balance = await wallet.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["lifetimeSpent"]) == (75, 0, 25)


async def test_a_capture_above_the_reservation_is_capped_and_the_overrun_recorded(wallet, lenser):
    await wallet.grant(lenser, 100)
    reservation = (await (await wallet.reserve(lenser, 30)).json())["data"]
    data = (await (await wallet.capture(reservation["reservationId"], 45)).json())["data"]
    assert (data["captured"], data["overrun"]) == (30, 15)
    assert (await wallet.balance(lenser))["balance"] == 70


async def test_a_retried_capture_answers_the_same_and_charges_once(wallet, lenser):
    await wallet.grant(lenser, 100)
    rid = (await (await wallet.reserve(lenser, 30)).json())["data"]["reservationId"]
    first, second = await asyncio.gather(wallet.capture(rid, 20), wallet.capture(rid, 20))
    assert first.status == second.status == 200
    assert (await wallet.balance(lenser))["balance"] == 80


async def test_release_returns_the_credits_and_a_released_reservation_cannot_be_captured(wallet, lenser):
    await wallet.grant(lenser, 100)
    rid = (await (await wallet.reserve(lenser, 30)).json())["data"]["reservationId"]
    assert (await wallet.release(rid)).status == 200
    assert (await wallet.balance(lenser))["availableBalance"] == 100
    refused = await wallet.capture(rid, 10)
    assert refused.status == 409 and await code_of(refused) == "wallet.reservation_closed"


async def test_one_reservation_per_reference_id(wallet, lenser):
    await wallet.grant(lenser, 100)
    first = await wallet.reserve(lenser, 30, reference_id="exec-1")
    again = await wallet.reserve(lenser, 30, reference_id="exec-1")
    assert (first.status, again.status) == (201, 200)
    assert (await first.json())["data"]["reservationId"] == (await again.json())["data"]["reservationId"]
    assert (await wallet.balance(lenser))["reserved"] == 30
    different = await wallet.reserve(lenser, 31, reference_id="exec-1")
    assert different.status == 409 and await code_of(different) == "wallet.idempotency_conflict"


async def test_refusals_carry_the_wallet_codes(wallet, lenser):
    await wallet.grant(lenser, 10)
    short = await wallet.reserve(lenser, 11)
    assert short.status == 402 and await code_of(short) == "wallet.insufficient_balance"
    for amount in (0, -3):
        invalid = await wallet.reserve(lenser, amount)
        assert invalid.status == 400 and await code_of(invalid) == "wallet.invalid_amount"
    missing = await wallet.reserve(uuid4(), 1)
    assert missing.status == 404 and await code_of(missing) == "wallet.not_found"
    unknown = await wallet.capture(str(uuid4()), 1)
    assert unknown.status == 404 and await code_of(unknown) == "wallet.reservation_not_found"
    assert (await wallet.balance(lenser))["reserved"] == 0


async def test_a_frozen_wallet_refuses_reservations_until_unfrozen(wallet, lenser):
    await wallet.grant(lenser, 10)
    freeze = await wallet.api.post(f"/internal/wallets/{lenser}/freeze", headers=wallet.internal)
    assert freeze.status == 200 and (await wallet.balance(lenser))["frozen"] is True
    refused = await wallet.reserve(lenser, 1)
    assert refused.status == 403 and await code_of(refused) == "wallet.account_frozen"
    await wallet.api.post(f"/internal/wallets/{lenser}/unfreeze", headers=wallet.internal)
    assert (await wallet.reserve(lenser, 1)).status == 201


async def test_a_daily_cap_refuses_reservations_beyond_it(wallet, lenser):
    await wallet.grant(lenser, 1000)
    limits = await wallet.api.put(
        f"/internal/wallets/{lenser}/limits", json={"daily": 50}, headers=wallet.internal
    )
    assert limits.status == 200
    rid = (await (await wallet.reserve(lenser, 40)).json())["data"]["reservationId"]
    await wallet.capture(rid, 40)
    over = await wallet.reserve(lenser, 11)
    assert over.status == 429 and await code_of(over) == "wallet.spending_limit_exceeded"
    assert (await wallet.reserve(lenser, 10)).status == 201


async def test_an_expired_reservation_is_released_without_any_request(wallet, lenser):
    await wallet.grant(lenser, 100)
    rid = (await (await wallet.reserve(lenser, 30, ttlSeconds=1)).json())["data"]["reservationId"]

    async def released() -> bool:
        return (await wallet.balance(lenser))["reserved"] == 0

    await eventually(released, timeout=5)
    status = await wallet.db.fetchval("SELECT status FROM reservations WHERE reservation_id = $1", rid)
    assert status == "expired"


async def test_transactions_list_balance_changes_newest_first_with_paging(wallet, lenser):
    await wallet.grant(lenser, 100, key="g1")
    rid = (await (await wallet.reserve(lenser, 30)).json())["data"]["reservationId"]
    await wallet.capture(rid, 30)
    await wallet.grant(lenser, 5, key="g2")
    await eventually(wallet.caught_up)
    page = await wallet.api.get("/wallet/transactions?limit=2&offset=0", headers=bearer(lenser))
    body = await page.json()
    assert [(t["txType"], t["amount"], t["direction"], t["balanceAfter"]) for t in body["data"]] == [
        ("deposit", 5, 1, 75),
        ("spend", 30, -1, 70),
    ]
    assert body["meta"].items() >= {"limit": 2, "offset": 0, "total": 3, "hasNextPage": True}.items()
    rest = await (
        await wallet.api.get("/wallet/transactions?limit=2&offset=2", headers=bearer(lenser))
    ).json()
    assert [t["balanceAfter"] for t in rest["data"]] == [100] and rest["meta"]["hasNextPage"] is False


async def test_bad_paging_parameters_are_a_validation_error(wallet, lenser):
    await wallet.grant(lenser, 1)
    response = await wallet.api.get("/wallet/transactions?limit=1000", headers=bearer(lenser))
    assert response.status == 400 and await code_of(response) == "validation_error"


async def test_pricing_lists_the_seeded_catalogue(api, lenser):
    body = await (await api.get("/wallet/pricing", headers=bearer(lenser))).json()
    keys = {m["key"] for m in body["data"]["models"]}
    assert "claude-sonnet-4-6" in keys
    assert all(isinstance(m["sampleCostUsd"], str) for m in body["data"]["models"])  # exact decimals


async def test_public_routes_need_a_token_and_internal_routes_the_platform_key(api, lenser):
    missing = await api.get("/wallet/balance")
    assert missing.status == 401 and await code_of(missing) == "auth.missing_token"
    forged = await api.get("/wallet/balance", headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status == 401 and await code_of(forged) == "auth.invalid_token"
    no_key = await api.post(f"/internal/wallets/{lenser}/freeze")
    assert no_key.status == 401 and await code_of(no_key) == "auth.unauthorized"


async def test_checkout_answers_the_billing_session(settings, lenser):
    seen = []

    async def checkouts(request: web.Request) -> web.Response:
        seen.append((request.headers.get("X-Platform-Api-Key"), await request.json()))
        return web.json_response(
            {"data": {"checkoutUrl": "https://pay.example/c/1", "checkoutId": "c-1"}}, status=201
        )

    billing = web.Application()
    billing.router.add_post("/internal/checkouts", checkouts)
    async with TestServer(billing, host="127.0.0.1") as server:
        settings.billing_webhook_url = str(server.make_url("/"))
        from aiohttp.test_utils import TestClient

        from wallet_api.app import create_app

        async with TestClient(TestServer(create_app(settings, background=False))) as api:
            response = await api.post("/wallet/checkout", json={"variantId": "v-100"}, headers=bearer(lenser))
            assert response.status == 201
            assert (await response.json())["data"] == {
                "checkoutUrl": "https://pay.example/c/1",
                "checkoutId": "c-1",
            }
    assert seen == [
        (settings.platform_api_key, {"lenserId": str(lenser), "variantId": "v-100", "email": None})
    ]


async def test_checkout_is_an_upstream_error_when_billing_is_unreachable(settings, lenser):
    from aiohttp.test_utils import TestClient

    from wallet_api.app import create_app

    settings.billing_webhook_url = "http://127.0.0.1:9"  # nothing listens there
    async with TestClient(TestServer(create_app(settings, background=False))) as api:
        response = await api.post("/wallet/checkout", json={"variantId": "v-100"}, headers=bearer(lenser))
        assert response.status == 502 and await code_of(response) == "billing.upstream_error"


async def test_a_reservation_while_the_database_is_unreachable_is_reservation_failed(settings, lenser):
    from urllib.parse import urlsplit

    from aiohttp.test_utils import TestClient

    from lf_testing.proxy import TcpProxy
    from wallet_api.app import create_app

    target = urlsplit(settings.database_url)
    proxy = await TcpProxy(target.hostname, target.port or 5432).start()
    settings.database_url = settings.database_url.replace(
        f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}"
    )
    async with TestClient(TestServer(create_app(settings, background=False))) as api:
        await api.post(
            f"/internal/wallets/{lenser}/grants",
            json={"amount": 5, "reason": "r", "idempotencyKey": "k"},
            headers={"X-Platform-Api-Key": settings.platform_api_key},
        )
        await proxy.cut()
        response = await api.post(
            "/internal/reservations",
            json={"lenserId": str(lenser), "amount": 1, "referenceId": "exec-1"},
            headers={"X-Platform-Api-Key": settings.platform_api_key},
        )
        assert response.status == 503 and await code_of(response) == "wallet.reservation_failed"


async def test_a_capture_retried_with_another_amount_is_a_conflict_and_a_captured_one_cannot_be_released(
    wallet, lenser
):
    await wallet.grant(lenser, 100)
    rid = (await (await wallet.reserve(lenser, 30)).json())["data"]["reservationId"]
    await wallet.capture(rid, 20)
    conflict = await wallet.capture(rid, 25)
    assert conflict.status == 409 and await code_of(conflict) == "wallet.idempotency_conflict"
    refused = await wallet.release(rid)
    assert refused.status == 409 and await code_of(refused) == "wallet.reservation_closed"
    assert "captured" in (await refused.json())["error"]["message"]
    assert (await wallet.balance(lenser))["balance"] == 80


async def test_amounts_beyond_any_real_use_are_invalid_and_nothing_overflows(wallet, lenser):
    huge = await wallet.grant(lenser, 2**63)
    assert huge.status == 400 and await code_of(huge) == "wallet.invalid_amount"
    await wallet.grant(lenser, 10**12)
    rid = (await (await wallet.reserve(lenser, 10)).json())["data"]["reservationId"]
    capture = await wallet.capture(rid, 2**63)
    assert capture.status == 400 and await code_of(capture) == "wallet.invalid_amount"
    limits = await wallet.api.put(
        f"/internal/wallets/{lenser}/limits", json={"daily": 2**63}, headers=wallet.internal
    )
    assert limits.status == 400 and await code_of(limits) == "wallet.invalid_amount"
    flag = await wallet.grant(lenser, True)  # JSON true is not 1 credit
    assert flag.status == 400 and await code_of(flag) == "validation_error"
    assert (await wallet.balance(lenser))["balance"] == 10**12


async def test_a_nul_character_in_a_body_is_a_validation_error_not_a_500(wallet, lenser):
    await wallet.grant(lenser, 10)
    response = await wallet.reserve(lenser, 1, reference_id="exec\u0000")
    assert response.status == 400 and await code_of(response) == "validation_error"
    assert (await wallet.balance(lenser))["reserved"] == 0


async def test_a_validation_error_names_each_field_as_the_client_sent_it(wallet, lenser):
    bad = {"lenserId": "not-a-uuid", "amount": 5, "referenceId": "r-1"}
    response = await wallet.api.post("/internal/reservations", json=bad, headers=wallet.internal)
    assert response.status == 400 and await code_of(response) == "validation_error"
    assert [f["field"] for f in (await response.json())["error"]["details"]["fields"]] == ["lenserId"]

    missing = await wallet.api.post(
        "/internal/reservations", json={"lenserId": str(lenser), "amount": 5}, headers=wallet.internal
    )
    assert [f["field"] for f in (await missing.json())["error"]["details"]["fields"]] == ["referenceId"]
