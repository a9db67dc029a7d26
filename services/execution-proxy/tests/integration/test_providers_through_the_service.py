"""Streams on credits through the service, for each provider: anthropic, gemini, ollama and openai
against their fakes (the platform's key set, as production would), and the built-in ``local``.

Each provider's model is priced here at a visible price (half a credit per input token, a credit
per output token), so that a charge for N tokens differs from a charge for N + 1; every expected
charge is the catalogue's own quote of the usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from execution_proxy.app import create_app
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.domain import tokens
from execution_proxy.domain.pricing import Metered, Price
from execution_proxy.settings import ExecutionSettings
from lf_testing import sse
from lf_testing.fakes.anthropic import FakeAnthropic
from lf_testing.fakes.gemini import FakeGemini
from lf_testing.fakes.ollama import FakeOllama
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.fakes.provider import FakeProvider
from lf_testing.servers import ServedAsInProduction
from lf_testing.waiting import eventually

FUNDS = 10_000
CUT = 3
"""The tokens a client reads before it goes away."""
PROMPT = "Tell me a story"
PLATFORM_KEY = "platform-provider-key"
VISIBLE_PRICE = {"input_per_1k": Decimal(5), "output_per_1k": Decimal(10)}
LOCAL_TOKEN_DELAY_MS = 300
"""``local`` paced so that a client can leave between two of its tokens."""


@dataclass
class Provider:
    """A provider as these tests call it: its model, its fake (none for ``local``), and what it
    states about input before the first token (then a stream cut short is ``partial``)."""

    name: str
    model: str
    fake: FakeProvider | None
    settings: dict[str, Any]
    states_input_first: bool
    max_tokens: int = 64

    @property
    def body(self) -> dict[str, Any]:
        return {
            "provider": self.name,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": [{"role": "user", "content": PROMPT}],
        }

    @property
    def input_tokens_when_cut(self) -> int:
        """What a stream cut short is charged as input: the stated input, else our count."""
        if self.fake is not None and self.states_input_first:
            return self.fake.usage.input_tokens
        return tokens.count_prompt([PROMPT])  # local states exactly our count

    def stall_after(self, deltas: int) -> None:
        """Make the provider go silent after ``deltas`` tokens (``local`` is paced instead)."""
        if self.fake is not None:
            self.fake.hang(after_deltas=deltas)


REMOTE: dict[str, tuple[type[FakeProvider], str, str, str | None, bool]] = {
    # name: fake, model, URL setting, key setting, states input before the first token
    "anthropic": (FakeAnthropic, "claude-haiku-4-5", "anthropic_api_url", "anthropic_api_key", True),
    "gemini": (FakeGemini, "gemini-2.5-flash", "gemini_api_url", "gemini_api_key", True),
    "ollama": (FakeOllama, "llama3.2", "ollama_url", None, False),
    "openai": (FakeOpenAI, "gpt-4o-mini", "openai_api_url", "openai_api_key", False),
}


# Those with a fake only (``local`` cannot be made to fail).
REMOTE_ONLY = pytest.mark.parametrize("provider", sorted(REMOTE), indirect=True)


@pytest.fixture(params=[*sorted(REMOTE), "local"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    if request.param == "local":
        # 8 tokens at most: a whole local stream stays short at this pace.
        settings = {"local_token_delay_ms": LOCAL_TOKEN_DELAY_MS}
        yield Provider("local", "local-small", None, settings, states_input_first=True, max_tokens=8)
        return
    fake_class, model, url_setting, key_setting, states_input_first = REMOTE[request.param]
    fake = await fake_class(api_key=PLATFORM_KEY if key_setting else None).start()
    settings = {url_setting: fake.url} | ({key_setting: PLATFORM_KEY} if key_setting else {})
    try:
        yield Provider(request.param, model, fake, settings, states_input_first)
    finally:
        await fake.stop()


@pytest.fixture
async def api(
    settings: ExecutionSettings, catalogue: CatalogueAdmin, provider: Provider
) -> AsyncIterator[TestClient]:
    """The service wired to this test's provider, its model at the visible price, served as in
    production (a handler is not cancelled when its client leaves: the stream must notice)."""
    price = Price(datetime.now(UTC), **VISIBLE_PRICE)
    await catalogue.set_price(provider.model, price, metadata={"actor": "test"})
    app = create_app(settings.model_copy(update=provider.settings))
    async with TestClient(ServedAsInProduction(app)) as client:
        yield client


async def quote(catalogue: CatalogueAdmin, settings: ExecutionSettings, model: str, used: Metered) -> int:
    current = await catalogue.current()
    return current.quote(model, datetime.now(UTC), settings.credits_per_usd).cost(used)[1]


async def recorded(db: asyncpg.Pool, lenser: UUID) -> dict[str, Any]:
    """The lenser's one execution, once it is recorded."""

    async def one() -> bool:
        return await db.fetchval("SELECT count(*) FROM executions WHERE lenser_id = $1", lenser) == 1

    await eventually(one, timeout=20)
    return dict(await db.fetchrow("SELECT * FROM executions WHERE lenser_id = $1", lenser))


async def reservation(wallet_db: asyncpg.Pool, lenser: UUID) -> dict[str, Any]:
    row = await wallet_db.fetchrow("SELECT * FROM reservations WHERE lenser_id = $1", lenser)
    assert row is not None
    return dict(row)


async def test_a_stream_cut_by_the_client_after_n_tokens_is_charged_n_tokens_plus_input_the_rest_released(
    provider, driver, lenser, catalogue, settings, db, wallet_db
):
    await driver.fund(lenser, FUNDS)
    provider.stall_after(CUT)

    response = await driver.execute(lenser, "/execute/stream", **provider.body)
    received = []
    async for event in sse.events(response):
        if event.name == "token":
            received.append(event.data["content"])
        if len(received) == CUT:
            break
    response.close()  # the client goes away while the provider is silent (or between tokens)

    execution = await recorded(db, lenser)
    assert (execution["status"], execution["client_disconnected"]) == ("succeeded", True)
    assert execution["output_tokens"] == CUT
    assert execution["input_tokens"] == provider.input_tokens_when_cut
    assert execution["usage_source"] == ("partial" if provider.states_input_first else "counted")
    used = Metered(input_tokens=provider.input_tokens_when_cut, output_tokens=CUT)
    expected = await quote(catalogue, settings, provider.model, used)
    assert execution["credits_charged"] == expected
    if provider.fake is not None:  # the provider's stream was stopped: its fake saw us leave
        fake = provider.fake

        async def provider_saw_the_client_leave() -> bool:
            return fake.disconnects == 1

        await eventually(provider_saw_the_client_leave, timeout=20)
        assert fake.streams_completed == 0
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (FUNDS - expected, 0)
    held = await reservation(wallet_db, lenser)
    assert (held["status"], held["captured"]) == ("captured", expected)
    assert held["amount"] > expected  # the rest was released
    assert await driver.trial_balance() == 0


async def test_streamed_and_buffered_calls_of_the_same_request_cost_exactly_the_same(
    provider, driver, lenser
):
    await driver.fund(lenser, FUNDS)

    buffered = await driver.execute(lenser, **provider.body)
    assert buffered.status == 200, await buffered.text()
    answer = (await buffered.json())["data"]
    streamed = await sse.read_all(await driver.execute(lenser, "/execute/stream", **provider.body))

    end = streamed[-1]
    assert end.name == "end"
    assert end.data["credits_charged"] == answer["creditsCharged"] > 0
    assert end.data["usage"] == answer["usage"]
    assert "".join(e.data["content"] for e in streamed if e.name == "token") == answer["content"]
    balance = await driver.settled(lenser)
    assert balance["balance"] == FUNDS - 2 * answer["creditsCharged"]


@REMOTE_ONLY
async def test_a_provider_failure_before_the_first_token_is_an_error_frame_and_nothing_is_charged(
    provider, driver, lenser, db, wallet_db
):
    await driver.fund(lenser, FUNDS)
    provider.fake.fail_with(400)

    frames = await sse.read_all(await driver.execute(lenser, "/execute/stream", **provider.body))

    assert [frame.name for frame in frames] == ["start", "error"]
    assert frames[-1].data["code"] == "execute.provider_failed"
    assert frames[-1].data["message"]
    assert (await recorded(db, lenser))["status"] == "failed"
    balance = await driver.settled(lenser)
    assert (balance["balance"], balance["reserved"]) == (FUNDS, 0)
    assert (await reservation(wallet_db, lenser))["status"] == "released"


@REMOTE_ONLY
async def test_a_provider_failure_after_some_tokens_charges_those_tokens_then_says_error_then_end(
    provider, driver, lenser, catalogue, settings, db
):
    await driver.fund(lenser, FUNDS)
    provider.fake.break_stream_after(CUT, "error")

    frames = await sse.read_all(await driver.execute(lenser, "/execute/stream", **provider.body))

    assert [frame.name for frame in frames] == ["start", *["token"] * CUT, "error", "end"]
    assert frames[-2].data["code"] == "execute.provider_failed"
    used = Metered(input_tokens=provider.input_tokens_when_cut, output_tokens=CUT)
    expected = await quote(catalogue, settings, provider.model, used)
    end = frames[-1].data
    assert end["usage"] == {"input_tokens": used.input_tokens, "output_tokens": CUT}
    assert end["credits_charged"] == expected
    assert (await recorded(db, lenser))["client_disconnected"] is False
    assert (await driver.settled(lenser))["balance"] == FUNDS - expected


@REMOTE_ONLY
async def test_a_rate_limited_provider_is_retried_before_the_first_token_and_charged_once(
    provider, driver, lenser, db, wallet_db
):
    await driver.fund(lenser, FUNDS)
    provider.fake.fail_with(429, retry_after=0)

    frames = await sse.read_all(await driver.execute(lenser, "/execute/stream", **provider.body))

    assert frames[0].name == "start" and frames[-1].name == "end"
    assert "error" not in {frame.name for frame in frames}
    assert "".join(f.data["content"] for f in frames if f.name == "token") == provider.fake.reply
    assert len(provider.fake.requests) == 2
    charged = frames[-1].data["credits_charged"]
    execution = await recorded(db, lenser)
    assert (execution["usage_source"], execution["credits_charged"]) == ("provider", charged)
    assert (await driver.settled(lenser))["balance"] == FUNDS - charged
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations WHERE lenser_id = $1", lenser) == 1
