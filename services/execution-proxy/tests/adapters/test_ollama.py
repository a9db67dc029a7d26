"""The Ollama adapter's own wire format: options for the limits, NDJSON, no key."""

from __future__ import annotations

from execution_proxy.adapters.providers.base import ProviderUsage
from execution_proxy.adapters.providers.ollama import usage_of
from lf_testing.fakes.ollama import FakeOllama


async def test_the_request_puts_the_limits_in_options_and_sends_no_key(wire, ask):
    wired = await wire("ollama", FakeOllama())

    await wired.stream(ask("Hi", system="Be brief.", max_tokens=25, temperature=0.1))
    await wired.complete(ask("Hi", max_tokens=25))

    streamed, buffered = wired.fake.requests
    assert streamed.path == "/api/chat"
    assert streamed.body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "options": {"num_predict": 25, "temperature": 0.1},
    }
    assert buffered.body["stream"] is False  # Ollama streams unless told not to
    assert buffered.body["options"] == {"num_predict": 25}
    assert "Authorization" not in streamed.headers


async def test_the_done_line_states_input_and_output(wire):
    wired = await wire("ollama", FakeOllama())

    streamed = await wired.stream()

    assert streamed.reports == [ProviderUsage(input_tokens=12, output_tokens=len(wired.fake.deltas))]


def test_a_prompt_served_from_ollamas_cache_states_no_input():
    # Ollama leaves prompt_eval_count out when it reused the cached prompt.
    assert usage_of({"done": True, "eval_count": 4}) == ProviderUsage(input_tokens=None, output_tokens=4)
