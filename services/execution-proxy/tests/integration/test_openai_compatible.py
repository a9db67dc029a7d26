"""/execute/openai/v1 with the official ``openai`` package as the client, unchanged: the lenser's JWT
is its api_key, our catalogue keys are its models, the wallet pays as on /execute/wallet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openai import AsyncOpenAI

from execution_proxy.app import create_app
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.tokens import bearer, make_token

HELLO = [{"role": "user", "content": "Hello there"}]


def sdk(api: TestClient, lenser: UUID, *, max_retries: int = 0) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=str(api.make_url("/execute/openai/v1")),
        api_key=make_token(str(lenser)),
        max_retries=max_retries,
    )


@pytest.fixture
async def client(api, lenser: UUID) -> AsyncIterator[AsyncOpenAI]:
    async with sdk(api, lenser) as client:
        yield client


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key="sk-platform")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def behind_openai(settings, catalogue, fake_openai, lenser) -> AsyncIterator[AsyncOpenAI]:
    """The SDK against an execution-proxy whose ``openai`` provider is the fake, without retries."""
    configured = settings.model_copy(
        update={"openai_api_url": fake_openai.url, "openai_api_key": "sk-platform", "provider_retries": 0}
    )
    async with TestClient(TestServer(create_app(configured))) as api, sdk(api, lenser) as client:
        yield client


async def test_a_completion_answers_in_openais_shape_and_charges_its_credits(driver, lenser, client):
    await driver.fund(lenser, 1000)

    completion = await client.chat.completions.create(model="local-small", messages=HELLO, max_tokens=30)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "local-small"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert 1 <= usage.completion_tokens <= 30
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    credits = usage.model_extra["credits_charged"]
    assert credits >= 1
    balance = await driver.settled(lenser)
    assert balance["balance"] == 1000 - credits
    assert balance["reserved"] == 0


async def test_a_stream_with_usage_ends_with_the_credits_charged(driver, lenser, client):
    await driver.fund(lenser, 1000)

    stream = await client.chat.completions.create(
        model="local-small",
        messages=HELLO,
        max_completion_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) == 12
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "length"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 12
    credits = last.usage.model_extra["credits_charged"]
    assert credits >= 1
    assert all(chunk.usage is None for chunk in chunks[:-1])
    balance = await driver.settled(lenser)
    assert balance["balance"] == 1000 - credits

    # The same request, buffered: the same text at the same price.
    completion = await client.chat.completions.create(model="local-small", messages=HELLO, max_tokens=12)
    assert completion.choices[0].message.content == text
    assert completion.usage is not None
    assert completion.usage.model_extra["credits_charged"] == credits


async def test_a_stream_without_usage_has_no_usage_chunk(driver, lenser, client):
    await driver.fund(lenser, 1000)

    stream = await client.chat.completions.create(
        model="local-small", messages=HELLO, max_tokens=5, stream=True
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(chunk.usage is None for chunk in chunks)


async def test_the_models_are_the_active_chat_models_of_the_catalogue(client):
    models = [model async for model in client.models.list()]

    owners = {model.id: model.owned_by for model in models}
    assert owners["local-small"] == "local"
    assert owners["gpt-4o-mini"] == "openai"
    assert "fal-ai/flux/schnell" not in owners  # an image model is not a chat model
    assert all(model.object == "model" for model in models)
    assert (await client.models.retrieve("local-small")).owned_by == "local"


async def test_an_unknown_model_is_openais_not_found_with_our_code(driver, lenser, client, wallet_db):
    await driver.fund(lenser, 1000)

    with pytest.raises(openai.NotFoundError) as raised:
        await client.chat.completions.create(model="no-such-model", messages=HELLO)

    assert raised.value.code == "execute.model_not_found"
    assert raised.value.param == "model"
    assert raised.value.type == "invalid_request_error"
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations") == 0


async def test_too_few_credits_is_a_402_insufficient_quota_never_retried(driver, lenser, api):
    await driver.fund(lenser, 1)

    async with sdk(api, lenser, max_retries=2) as retrying:
        with pytest.raises(openai.APIStatusError) as raised:
            await retrying.chat.completions.create(model="local-small", messages=HELLO, max_tokens=4000)

    assert raised.value.status_code == 402
    assert raised.value.code == "wallet.insufficient_balance"
    assert raised.value.type == "insufficient_quota"
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert (await driver.balance(lenser))["reserved"] == 0


async def test_an_invalid_token_is_an_authentication_error(api):
    async with AsyncOpenAI(
        base_url=str(api.make_url("/execute/openai/v1")), api_key="not-a-jwt", max_retries=0
    ) as stranger:
        with pytest.raises(openai.AuthenticationError) as raised:
            await stranger.chat.completions.create(model="local-small", messages=HELLO)

    assert raised.value.code == "auth.invalid_token"
    assert raised.value.type == "authentication_error"


async def test_what_we_cannot_honour_is_refused_and_harmless_fields_are_ignored(driver, lenser, client):
    await driver.fund(lenser, 1000)

    with pytest.raises(openai.BadRequestError) as two_choices:
        await client.chat.completions.create(model="local-small", messages=HELLO, n=2)
    with pytest.raises(openai.BadRequestError) as with_tools:
        await client.chat.completions.create(
            model="local-small",
            messages=HELLO,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    with pytest.raises(openai.BadRequestError) as unknown:
        await client.chat.completions.create(model="local-small", messages=HELLO, extra_body={"bogus": 1})
    answered = await client.chat.completions.create(
        model="local-small", messages=HELLO, max_tokens=5, user="someone", n=1, seed=7
    )

    assert (two_choices.value.param, two_choices.value.code) == ("n", "validation_error")
    assert with_tools.value.param == "tools"
    assert unknown.value.param == "bogus"
    assert answered.choices[0].message.content


async def test_openai_message_forms_are_read_and_bad_messages_named(driver, lenser, client):
    await driver.fund(lenser, 1000)

    answered = await client.chat.completions.create(
        model="local-small",
        max_tokens=5,
        messages=[
            {"role": "developer", "content": "Be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}],
            },
        ],
    )
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="local-small", messages=[{"role": "tool", "content": ""}])

    assert answered.choices[0].message.content
    assert refused.value.code == "execute.invalid_messages"
    assert refused.value.param == "messages.0.role"
    assert "messages.0.content" in refused.value.message


async def test_the_rate_limit_is_one_budget_with_execute_wallet(driver, lenser, client):
    """Spend the lenser's 100/min on /execute/wallet's key, and the OpenAI route is refused too."""
    # 100 cheap refusals (bad messages) on /execute/wallet: each one counted against the limit.
    for _ in range(100):
        response = await driver.execute(lenser, messages=[])
        assert response.status == 400

    with pytest.raises(openai.RateLimitError) as refused:
        await client.chat.completions.create(model="local-small", messages=HELLO)

    assert refused.value.code == "rate_limited"
    assert int(refused.value.response.headers["Retry-After"]) >= 1


async def test_unknown_routes_under_the_prefix_answer_in_openais_shape(api, lenser):
    response = await api.post("/execute/openai/v1/embeddings", json={}, headers=bearer(lenser))

    assert response.status == 404
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "not_found"


async def test_a_provider_failing_before_the_first_token_is_a_502_and_costs_nothing(
    driver, lenser, behind_openai, fake_openai
):
    await driver.fund(lenser, 1000)
    fake_openai.fail_with(500)

    with pytest.raises(openai.InternalServerError) as raised:
        await behind_openai.chat.completions.create(
            model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )

    assert raised.value.status_code == 502
    assert raised.value.code == "execute.provider_failed"
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (1000, 0)


async def test_a_stream_broken_after_tokens_reports_their_charge_then_raises(
    driver, lenser, behind_openai, fake_openai
):
    await driver.fund(lenser, 1000)
    fake_openai.break_stream_after(3, "drop")
    stream = await behind_openai.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )

    chunks = []
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            chunks.append(chunk)

    assert raised.value.code == "execute.provider_failed"
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.content) == 3
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 3
    balance = await driver.settled(lenser)
    assert balance["balance"] == 1000 - usage.model_extra["credits_charged"]
