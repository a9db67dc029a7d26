"""lf_service's execution-proxy client against lf_testing's fake of it (what platform-api's tests
run on): streams, their cancel mid-way and before the start, as the real service answers them
(execution-proxy's tests hold the client to the real one)."""

from __future__ import annotations

import asyncio

import pytest

from lf_service.execution_proxy import ExecutionAnswer, ExecutionFailed, ExecutionProxyClient
from lf_testing.fakes.execution_proxy import FakeExecutionProxy

BODY = {"funding": "service", "provider": "local", "model": "local-small"}


def body(reference: str, prompt: str) -> dict[str, object]:
    return {**BODY, "messages": [{"role": "user", "content": prompt}], "referenceId": reference}


async def test_a_stream_cancelled_mid_way_ends_cancelled_and_a_pending_cancel_refuses_the_start():
    async with FakeExecutionProxy() as proxy:
        proxy.token_delay = 0.02
        client = ExecutionProxyClient(proxy.url, proxy.api_key)
        try:
            stream = client.stream(body("r-1", " ".join(["word"] * 50)), timeout=10)
            first = [await anext(stream) for _ in range(3)]
            cancelling = asyncio.create_task(client.cancel("service", reference_id="r-1", timeout=10))
            rest = [item async for item in stream]
            cancelled = await cancelling

            answer = rest[-1]
            assert isinstance(answer, ExecutionAnswer) and answer.cancelled
            assert answer.content == "".join(first + rest[:-1]) and answer.output_tokens < 50
            assert cancelled.state == "cancelled" and cancelled.execution is not None
            assert cancelled.execution.content == answer.content

            pending = await client.cancel("service", reference_id="r-2", timeout=10)
            assert (pending.state, pending.execution) == ("pending", None)
            with pytest.raises(ExecutionFailed) as refused:
                [item async for item in client.stream(body("r-2", "hello"), timeout=10)]
            assert (refused.value.code, refused.value.transient) == ("execute.cancelled", False)
        finally:
            await client.close()


async def test_running_elsewhere_is_transient_and_asks_again_with_the_same_reference():
    async with FakeExecutionProxy() as proxy:
        proxy.elsewhere_next = 1
        client = ExecutionProxyClient(proxy.url, proxy.api_key)
        try:
            with pytest.raises(ExecutionFailed) as refused:
                [item async for item in client.stream(body("r-3", "hello"), timeout=10)]
            assert refused.value.code == "execute.running_elsewhere"
            assert refused.value.transient and refused.value.same_reference

            answer = [item async for item in client.stream(body("r-3", "hello"), timeout=10)][-1]
            assert isinstance(answer, ExecutionAnswer) and answer.content == "echo: hello"
        finally:
            await client.close()
