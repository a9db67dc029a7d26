"""lf_service's client of /internal/executions (what platform-api's run workers call), against the
real service: ``stream`` yields the text then the answer, ``cancel`` stops it, and the failures are
classified as ``execute`` classifies them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient

from lf_service.execution_proxy import (
    ExecutionAnswer,
    ExecutionFailed,
    ExecutionProxyClient,
    ExecutionProxyUnavailable,
)
from lf_testing.processes import free_port

SLOW = pytest.mark.parametrize("settings", [{"local_token_delay_ms": 30}], indirect=True)
FUNDS = 10_000


@pytest.fixture
async def client(api: TestClient) -> AsyncIterator[ExecutionProxyClient]:
    client = ExecutionProxyClient(str(api.server.make_url("")), "test-platform-key")
    yield client
    await client.close()


def body(lenser: UUID, reference: str) -> dict[str, object]:
    return {
        "funding": "platform_credit",
        "lenserId": str(lenser),
        "provider": "local",
        "model": "local-small",
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "maxTokens": 40,
        "referenceId": reference,
    }


async def read(stream: AsyncIterator[str | ExecutionAnswer]) -> tuple[list[str], ExecutionAnswer]:
    texts = []
    async for item in stream:
        if isinstance(item, str):
            texts.append(item)
        else:
            return texts, item
    raise AssertionError("no answer at the end of the stream")


async def test_a_stream_yields_each_text_then_the_answer_and_a_retry_is_replayed_whole(
    client, driver, lenser
):
    await driver.fund(lenser, FUNDS)

    texts, answer = await read(client.stream(body(lenser, "n-1"), timeout=30))

    assert len(texts) == answer.output_tokens == 40
    assert answer.content == "".join(texts)
    assert (answer.replayed, answer.cancelled) == (False, False)
    assert answer.credits >= 1 and answer.provider == "local"
    again_texts, again = await read(client.stream(body(lenser, "n-1"), timeout=30))
    assert again_texts == [answer.content]
    assert again.replayed is True
    assert (again.execution_id, again.credits, again.content) == (
        answer.execution_id,
        answer.credits,
        answer.content,
    )


@SLOW
async def test_a_cancel_ends_the_stream_with_a_cancelled_answer_charged_for_what_was_produced(
    client, driver, lenser
):
    await driver.fund(lenser, FUNDS)
    stream = client.stream(body(lenser, "n-2"), timeout=30)
    texts = [await anext(stream) for _ in range(3)]

    cancelled = await client.cancel("platform_credit", lenser_id=str(lenser), reference_id="n-2", timeout=10)
    rest, answer = await read(stream)

    assert cancelled.state == "cancelled"
    assert answer.cancelled is True
    assert 3 <= answer.output_tokens < 40
    assert answer.content == "".join(texts + rest)
    assert cancelled.execution is not None
    assert (cancelled.execution.credits, cancelled.execution.content) == (answer.credits, answer.content)
    assert cancelled.execution.cancelled is True
    assert cancelled.execution_id == answer.execution_id
    assert (await driver.settled(lenser))["balance"] == FUNDS - answer.credits


async def test_a_cancelled_reference_fails_for_good_without_running(client, driver, lenser):
    await driver.fund(lenser, FUNDS)
    pending = await client.cancel("platform_credit", lenser_id=str(lenser), reference_id="n-3", timeout=10)
    assert (pending.state, pending.execution) == ("pending", None)

    with pytest.raises(ExecutionFailed) as refused:
        await read(client.stream(body(lenser, "n-3"), timeout=30))

    assert (refused.value.code, refused.value.transient) == ("execute.cancelled", False)


async def test_an_unreachable_proxy_is_an_outage_for_a_stream_and_a_cancel(lenser):
    client = ExecutionProxyClient(f"http://127.0.0.1:{free_port()}", "test-platform-key")
    try:
        with pytest.raises(ExecutionProxyUnavailable):
            await read(client.stream(body(lenser, "n-4"), timeout=5))
        with pytest.raises(ExecutionProxyUnavailable):
            await client.cancel("platform_credit", lenser_id=str(lenser), reference_id="n-4", timeout=5)
    finally:
        await client.close()
