"""POST /execute/wallet: reserve the most it can cost, run the provider, charge what it used."""

from __future__ import annotations

from lf_testing.tokens import bearer


async def test_an_execution_on_credits_is_charged_what_it_used_and_the_rest_released(driver, lenser):
    await driver.fund(lenser, 1000)

    response = await driver.execute(lenser, max_tokens=30)

    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["content"]
    assert data["usage"]["output_tokens"] <= 30
    assert data["usageSource"] == "provider"
    assert data["creditsCharged"] >= 1
    balance = await driver.settled(lenser)
    assert balance["balance"] == 1000 - data["creditsCharged"]
    assert balance["reserved"] == 0
    assert await driver.trial_balance() == 0


async def test_an_unknown_model_is_refused_before_any_reservation(driver, lenser, wallet_db):
    await driver.fund(lenser, 1000)

    response = await driver.execute(lenser, model="no-such-model")

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "execute.model_not_found"
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations") == 0


async def test_bad_messages_are_named_one_by_one(driver, lenser):
    response = await driver.execute(lenser, messages=[{"role": "robot", "content": ""}])

    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "execute.invalid_messages"
    assert {f["field"] for f in error["details"]["fields"]} == {"messages.0.role", "messages.0.content"}


async def test_a_lenser_without_credits_gets_the_wallets_refusal(driver, lenser, api):
    await driver.fund(lenser, 1)

    response = await driver.execute(lenser, max_tokens=4000)

    assert response.status == 402
    assert (await response.json())["error"]["code"] == "wallet.insufficient_balance"
    assert (await driver.balance(lenser))["reserved"] == 0


async def test_a_stream_ends_with_its_charge(driver, lenser, api):
    await driver.fund(lenser, 1000)

    response = await api.post(
        "/execute/stream",
        json={
            "provider": "local",
            "model": "local-small",
            "max_tokens": 12,
            "messages": [{"role": "user", "content": "Stream please"}],
        },
        headers=bearer(lenser),
    )

    assert response.status == 200
    text = await response.text()
    frames = [block for block in text.split("\n\n") if block]
    assert frames[0].startswith("event: start")
    assert sum(frame.startswith("event: token") for frame in frames) == 12
    assert frames[-1].startswith("event: end")
