"""The catalogue's internal routes: a change is in force at once and reaches GET /wallet/pricing."""

from __future__ import annotations

from decimal import Decimal

import aiohttp

from lf_testing.tokens import bearer
from lf_testing.waiting import eventually

INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}
HOUSE = {"key": "house-model", "provider": "local", "providerModel": "local", "displayName": "House"}


async def wallet_pricing(wallet, lenser) -> dict[str, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(wallet.make_url("/wallet/pricing"), headers=bearer(lenser)) as response,
    ):
        assert response.status == 200
        return {model["key"]: model for model in (await response.json())["data"]["models"]}


async def test_a_new_model_and_its_price_reach_the_wallets_pricing(api, wallet, lenser):
    assert (await api.put("/internal/catalogue/models", json=HOUSE, headers=INTERNAL)).status == 200
    price = {"modelKey": "house-model", "inputPer1k": "0.5", "outputPer1k": "1.5"}
    assert (await api.post("/internal/catalogue/prices", json=price, headers=INTERNAL)).status == 201

    async def published() -> bool:
        return "house-model" in await wallet_pricing(wallet, lenser)

    await eventually(published, timeout=15)
    shown = (await wallet_pricing(wallet, lenser))["house-model"]
    # 1k input + 1k output at list price, no markup (the dev global margin): $2.00 = 200 credits.
    assert (Decimal(shown["sampleCostUsd"]), shown["sampleCostCredits"]) == (Decimal(2), 200)


async def test_a_margin_change_is_charged_at_once_on_this_replica(api, driver, lenser):
    await driver.fund(lenser, 10_000)
    policy = {"scope": "local-small", "fixedFeeUsd": "0.50", "minChargeCredits": 1}
    assert (await api.put("/internal/catalogue/margin-policy", json=policy, headers=INTERNAL)).status == 200

    response = await driver.execute(lenser, max_tokens=1)

    assert response.status == 200, await response.text()
    assert (await response.json())["data"]["creditsCharged"] >= 50  # the fixed fee alone is 50 credits


async def test_catalogue_changes_are_refused_without_the_platform_key_or_for_unknown_models(api):
    assert (await api.put("/internal/catalogue/models", json=HOUSE)).status == 401
    unknown = {"modelKey": "nope", "inputPer1k": "1"}
    response = await api.post("/internal/catalogue/prices", json=unknown, headers=INTERNAL)
    assert (response.status, (await response.json())["error"]["code"]) == (404, "execute.model_not_found")
    bad = {**HOUSE, "provider": "skynet"}
    response = await api.put("/internal/catalogue/models", json=bad, headers=INTERNAL)
    assert (response.status, (await response.json())["error"]["code"]) == (400, "validation_error")
