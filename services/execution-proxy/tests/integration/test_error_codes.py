"""Every refusal of an execution on credits, each produced for real and answered with its code of the
catalogue: execution-proxy's own (``execute.*``, ``pricing.*``) and the wallet's that the route passes
through. A refusal that comes before the wallet, or is the wallet's own, leaves nothing reserved; a
provider that fails after the reservation leaves nothing charged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy.adapters.wallet import PASSED_THROUGH
from execution_proxy.app import create_app
from execution_proxy.application.executions import REFERENCE_NAMESPACE
from execution_proxy.domain.tokens import count_prompt
from execution_proxy.settings import ExecutionSettings
from lf_contracts import errors
from lf_contracts.errors import CATALOGUE, ErrorCode
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.processes import free_port
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually

INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}
HELLO = [{"role": "user", "content": "Hello there"}]


@dataclass
class Scene:
    driver: Any
    api: TestClient
    lenser: UUID

    async def wallet_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.driver.wallet.make_url(path), json=body, headers=INTERNAL) as response,
        ):
            assert response.status == 200, await response.text()

    async def catalogue_call(self, method: str, path: str, body: dict[str, Any]) -> None:
        response = await self.api.request(method, path, json=body, headers=INTERNAL)
        assert response.status in (200, 201), await response.text()

    async def house_model(self, key: str) -> None:
        """A model of the built-in provider, defined but not priced."""
        model = {"key": key, "provider": "local", "providerModel": "local", "displayName": key}
        await self.catalogue_call("PUT", "/internal/catalogue/models", model)


async def funded(scene: Scene) -> None:
    await scene.driver.fund(scene.lenser, 1000)


async def no_wallet(scene: Scene) -> None:
    """A lenser nobody ever credited: the wallet has no account for them."""


async def one_credit(scene: Scene) -> None:
    await scene.driver.fund(scene.lenser, 1)


async def frozen(scene: Scene) -> None:
    await funded(scene)
    await scene.wallet_call("POST", f"/internal/wallets/{scene.lenser}/freeze")


async def daily_cap_of_one_credit(scene: Scene) -> None:
    await funded(scene)
    await scene.wallet_call("PUT", f"/internal/wallets/{scene.lenser}/limits", {"daily": 1})


async def unpriced_model(scene: Scene) -> None:
    await funded(scene)
    await scene.house_model("unpriced")


async def model_that_charges_nothing(scene: Scene) -> None:
    """Priced at 0 with a minimum charge of 0: the formula yields 0 credits, which no wallet can hold."""
    await funded(scene)
    await scene.house_model("free-lunch")
    price = {"modelKey": "free-lunch", "inputPer1k": "0", "outputPer1k": "0"}
    await scene.catalogue_call("POST", "/internal/catalogue/prices", price)
    policy = {"scope": "free-lunch", "minChargeCredits": 0}
    await scene.catalogue_call("PUT", "/internal/catalogue/margin-policy", policy)


async def model_dearer_than_any_wallet(scene: Scene) -> None:
    """A (mis)price whose most a request can cost is beyond what a wallet holds at all."""
    await funded(scene)
    await scene.house_model("gold-plated")
    price = {"modelKey": "gold-plated", "inputPer1k": "0", "outputPer1k": "1000000000000"}
    await scene.catalogue_call("POST", "/internal/catalogue/prices", price)


@dataclass(frozen=True)
class Refusal:
    error: ErrorCode
    arrange: Callable[[Scene], Awaitable[None]] = funded
    body: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.error.code


REFUSALS = [
    Refusal(errors.EXECUTE_INVALID_MESSAGES, body={"messages": [{"role": "robot", "content": ""}]}),
    Refusal(errors.EXECUTE_MODEL_NOT_FOUND, body={"model": "no-such-model"}),
    Refusal(errors.EXECUTE_MODEL_NOT_FOUND, body={"provider": "anthropic", "model": "local-small"}),
    # Seeded, but the platform has no OpenAI key in these settings.
    Refusal(errors.EXECUTE_UNSUPPORTED_PROVIDER, body={"provider": "openai", "model": "gpt-4o-mini"}),
    Refusal(errors.PRICING_NOT_FOUND, unpriced_model, body={"model": "unpriced"}),
    Refusal(errors.EXECUTE_PRICING_FAILED, model_that_charges_nothing, body={"model": "free-lunch"}),
    Refusal(errors.WALLET_NOT_FOUND, no_wallet),
    Refusal(errors.WALLET_INSUFFICIENT_BALANCE, one_credit, body={"max_tokens": 4000}),
    Refusal(errors.WALLET_ACCOUNT_FROZEN, frozen),
    Refusal(errors.WALLET_SPENDING_LIMIT_EXCEEDED, daily_cap_of_one_credit, body={"max_tokens": 1000}),
    Refusal(errors.WALLET_INVALID_AMOUNT, model_dearer_than_any_wallet, body={"model": "gold-plated"}),
]


async def reservations_of(wallet_db, lenser: UUID) -> list[dict[str, Any]]:
    rows = await wallet_db.fetch("SELECT * FROM reservations WHERE lenser_id = $1", lenser)
    return [dict(row) for row in rows]


@pytest.mark.parametrize("refusal", REFUSALS, ids=str)
async def test_a_refused_execution_answers_its_code_and_reserves_nothing(
    refusal, driver, api, lenser, wallet_db
):
    await refusal.arrange(Scene(driver, api, lenser))

    response = await driver.execute(lenser, **{"messages": HELLO, **refusal.body})

    assert response.status == refusal.error.status, await response.text()
    assert (await response.json())["error"]["code"] == refusal.error.code
    assert await reservations_of(wallet_db, lenser) == []


async def test_the_spending_cap_is_answered_with_nothing_spent(driver, api, lenser):
    # The same refusal seen from the wallet's side: the credits are all still there.
    await daily_cap_of_one_credit(Scene(driver, api, lenser))

    response = await driver.execute(lenser, max_tokens=1000, messages=HELLO)

    assert response.status == 429
    balance = await driver.balance(lenser)
    assert (balance["balance"], balance["reserved"], balance["lifetime_spent"]) == (1000, 0, 0)


@asynccontextmanager
async def replica(settings: ExecutionSettings, **changes: Any) -> AsyncIterator[TestClient]:
    """execution-proxy configured otherwise, on the same database as ``api``."""
    async with TestClient(TestServer(create_app(settings.model_copy(update=changes)))) as client:
        yield client


async def test_an_unreachable_wallet_is_a_reservation_failure(settings, catalogue, lenser, driver, wallet_db):
    await driver.fund(lenser, 1000)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async with replica(settings, wallet_api_url=closed) as api:
        response = await api.post(
            "/execute/wallet",
            json={"provider": "local", "model": "local-small", "messages": HELLO},
            headers=bearer(lenser),
        )
        error = (await response.json())["error"]

    assert (response.status, error["code"]) == (503, errors.WALLET_RESERVATION_FAILED.code)
    assert errors.WALLET_RESERVATION_FAILED.status == 503
    assert await reservations_of(wallet_db, lenser) == []


@pytest.fixture
async def failing_openai() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI(api_key="sk-platform").start()
    fake.fail_with(500, times=None)
    yield fake
    await fake.stop()


async def provider_failure_answered(response: aiohttp.ClientResponse, route: str) -> str:
    """The code a failed provider was answered with: the JSON error of /execute/wallet, or the
    ``error`` frame of a stream (its ``start`` frame went out before the provider was called)."""
    if route == "/execute/wallet":
        assert response.status == errors.EXECUTE_PROVIDER_FAILED.status
        return (await response.json())["error"]["code"]
    assert response.status == 200
    frames = [frame for frame in (await response.text()).split("\n\n") if frame]
    assert [frame.split("\n")[0] for frame in frames] == ["event: start", "event: error"]
    return json.loads(frames[-1].split("data: ", 1)[1])["code"]


@pytest.mark.parametrize("route", ["/execute/wallet", "/execute/stream"])
async def test_a_provider_that_fails_after_the_reservation_charges_nothing(
    route, settings, catalogue, lenser, driver, wallet_db, failing_openai
):
    await driver.fund(lenser, 1000)

    async with replica(
        settings, openai_api_url=failing_openai.url, openai_api_key="sk-platform", provider_retries=2
    ) as api:
        response = await api.post(
            route,
            json={"provider": "openai", "model": "gpt-4o-mini", "max_tokens": 50, "messages": HELLO},
            headers=bearer(lenser),
        )
        assert await provider_failure_answered(response, route) == errors.EXECUTE_PROVIDER_FAILED.code
        assert len(failing_openai.requests) == 3  # the first try and both retries
        balance = await driver.settled(lenser)  # the failure relayed, the reservation released

    assert (balance["balance"], balance["reserved"], balance["lifetime_spent"]) == (1000, 0, 0)
    [reservation] = await reservations_of(wallet_db, lenser)
    assert reservation["status"] == "released" and reservation["captured"] is None
    assert await driver.trial_balance() == 0


# --- BYOK: a stored key of the caller (POST /execute/keys) ---------------------------------------


async def stored_key(api: TestClient, owner: UUID, provider: str) -> str:
    response = await api.post(
        "/execute/keys",
        json={"provider": provider, "key": f"{provider}-key-{uuid4().hex}", "label": "mine"},
        headers=bearer(owner),
    )
    assert response.status == 201, await response.text()
    return (await response.json())["data"]["id"]


async def test_someone_elses_key_answers_exactly_like_a_missing_one(api, lenser):
    someone_elses = await stored_key(api, uuid4(), "openai")
    body = {"provider": "openai", "model": "gpt-4o-mini", "messages": HELLO}

    theirs = await api.post(
        "/execute/byok", json={**body, "key_ref_id": someone_elses}, headers=bearer(lenser)
    )
    missing = await api.post(
        "/execute/byok", json={**body, "key_ref_id": str(uuid4())}, headers=bearer(lenser)
    )

    assert theirs.status == missing.status == errors.EXECUTE_KEY_RESOLUTION_FAILED.status
    assert (await theirs.json())["error"] == (await missing.json())["error"]
    assert (await theirs.json())["error"]["code"] == errors.EXECUTE_KEY_RESOLUTION_FAILED.code


async def test_a_key_of_another_provider_is_a_provider_mismatch(api, lenser):
    anthropic_key = await stored_key(api, lenser, "anthropic")

    response = await api.post(
        "/execute/byok",
        json={"provider": "openai", "model": "gpt-4o-mini", "messages": HELLO, "key_ref_id": anthropic_key},
        headers=bearer(lenser),
    )

    assert response.status == errors.EXECUTE_PROVIDER_MISMATCH.status
    assert (await response.json())["error"]["code"] == errors.EXECUTE_PROVIDER_MISMATCH.code


async def test_a_reference_reused_for_another_amount_is_the_wallets_idempotency_conflict(
    api, driver, lenser, wallet_db
):
    await driver.fund(lenser, 10_000)
    internal = {"X-Platform-Api-Key": "test-platform-key"}
    body = {
        "funding": "platform_credit",
        "lenserId": str(lenser),
        "provider": "local",
        "model": "local-small",
    }
    # An attempt under this reference still holds its reservation (in flight, or its replica died).
    execution_id = uuid5(REFERENCE_NAMESPACE, f"platform_credit:{lenser}:node-1")
    async with aiohttp.ClientSession() as http:
        reserved = await http.post(
            driver.wallet.make_url("/internal/reservations"),
            json={"lenserId": str(lenser), "amount": 1, "referenceId": str(execution_id)},
            headers=internal,
        )
        assert reserved.status == 201

    response = await api.post(
        "/internal/executions",
        json={**body, "referenceId": "node-1", "maxTokens": 500, "messages": HELLO},
        headers=internal,
    )

    assert response.status == errors.WALLET_IDEMPOTENCY_CONFLICT.status
    assert (await response.json())["error"]["code"] == errors.WALLET_IDEMPOTENCY_CONFLICT.code
    assert len(await reservations_of(wallet_db, lenser)) == 1


def test_every_execute_and_pricing_code_and_every_wallet_code_passed_through_is_produced_here():
    produced = {refusal.error.code for refusal in REFUSALS} | {
        errors.EXECUTE_PROVIDER_FAILED.code,  # test_a_provider_that_fails_after_the_reservation...
        errors.EXECUTE_KEY_RESOLUTION_FAILED.code,  # test_someone_elses_key_answers...
        errors.EXECUTE_PROVIDER_MISMATCH.code,  # test_a_key_of_another_provider...
        errors.WALLET_RESERVATION_FAILED.code,  # test_an_unreachable_wallet...
        errors.WALLET_IDEMPOTENCY_CONFLICT.code,  # test_a_reference_reused_for_another_amount...
        errors.EXECUTE_CANCELLED.code,  # test_detached_executions: test_a_cancel_before_the_start...
        errors.EXECUTE_RUNNING_ELSEWHERE.code,  # test_detached_executions: test_a_retry_on_another_replica...
    }
    ours = {code for code in CATALOGUE if code.startswith(("execute.", "pricing."))}
    assert ours | PASSED_THROUGH <= produced


async def test_a_reference_whose_reservation_expired_is_refused_before_the_provider_runs(
    api, driver, lenser, wallet_db, catalogue
):
    await driver.fund(lenser, 10_000)
    internal = {"X-Platform-Api-Key": "test-platform-key"}
    quote = (await catalogue.current()).quote("local-small", datetime.now(UTC), 100)
    most = quote.most(count_prompt(m["content"] for m in HELLO), 5)
    execution_id = uuid5(REFERENCE_NAMESPACE, f"platform_credit:{lenser}:node-2")
    async with aiohttp.ClientSession() as http:  # an earlier attempt's reservation, for the same amount
        reserved = await http.post(
            driver.wallet.make_url("/internal/reservations"),
            json={"lenserId": str(lenser), "amount": most, "referenceId": str(execution_id), "ttlSeconds": 1},
            headers=internal,
        )
        assert reserved.status == 201

    async def expired() -> bool:
        return [r["status"] for r in await reservations_of(wallet_db, lenser)] == ["expired"]

    await eventually(expired, timeout=10)
    body = {
        "funding": "platform_credit",
        "lenserId": str(lenser),
        "provider": "local",
        "model": "local-small",
    }
    response = await api.post(
        "/internal/executions",
        json={**body, "referenceId": "node-2", "maxTokens": 5, "messages": HELLO},
        headers=internal,
    )

    assert response.status == errors.WALLET_RESERVATION_CLOSED.status
    assert (await response.json())["error"]["code"] == errors.WALLET_RESERVATION_CLOSED.code
    assert (await driver.balance(lenser))["lifetime_spent"] == 0
