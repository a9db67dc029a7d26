"""A client of execution-proxy's ``POST /internal/executions``, for the services that execute AI
through it (platform-api's run workers, lightning-jobs' evaluation and work steps).

Its wire format (execution-proxy ``http/internal.py``): a camelCase body with ``funding``, the
payer, ``provider``, ``model``, ``messages``, ``referenceId``; header ``X-Platform-Api-Key``; the
answer enveloped, ``data: {content, usage: {input_tokens, output_tokens}, provider, model,
creditsCharged, executionId, replayed}``. A repeated ``referenceId`` is answered from the proxy's
record of the first execution, never executed or charged twice: callers make it one per step.

Failures: execution-proxy unreachable (no connection) or answering 503 is an outage, not the
caller's: ``ExecutionProxyUnavailable``, on which callers keep the step and try it again later (an
outage delays work, it never fails it). A timeout, 429 or any other 5xx is transient; any other 4xx
is the request's own fault (``ExecutionFailed`` says which with ``transient``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

# Providers execution-proxy knows, by the model names' usual prefixes; anything else goes to the
# caller's default (``local`` in development: the proxy's built-in provider, no key needed).
_PROVIDER_PREFIXES = (
    ("claude", "anthropic"),
    ("gpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("gemini", "gemini"),
    ("local", "local"),
)


class ExecutionProxyUnavailable(Exception):
    """execution-proxy could not be asked: nothing was executed, so nothing was charged."""


class ExecutionFailed(Exception):
    """``credits``: what the failed execution was charged all the same (a stream cut short)."""

    def __init__(self, code: str, message: str, *, transient: bool, credits: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.transient, self.credits = code, message, transient, credits


def provider_for(model: str, override: str | None, default: str) -> str:
    if override:
        return override
    return next((provider for prefix, provider in _PROVIDER_PREFIXES if model.startswith(prefix)), default)


@dataclass(frozen=True)
class ExecutionAnswer:
    """What execution-proxy answered for an execution that succeeded."""

    content: str
    input_tokens: int
    output_tokens: int
    provider: str
    model: str
    credits: int
    execution_id: str | None
    replayed: bool
    latency_ms: int
    cancelled: bool = False
    """Stopped by ``POST /internal/executions/cancel`` (charged for what it used): not a result."""


CANCEL_IDENTITY = ("funding", "lenserId", "sponsorId", "referenceId")
"""The fields of an execution's body that name it to ``POST /internal/executions/cancel``."""


@dataclass(frozen=True)
class CancelAnswer:
    """execution-proxy's answer to a cancel: ``state`` ``cancelled`` (it was running and is now
    stopped and recorded), ``ended`` (it had ended before), ``pending`` (none had started; a later
    execution of the reference is refused), ``cancelling`` (being stopped, not recorded yet: ask
    again); ``execution``: its record (the first two), else None."""

    state: str
    execution: ExecutionAnswer | None


class ExecutionProxyClient:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._session: aiohttp.ClientSession | None = None

    async def execute(self, body: dict[str, Any], *, timeout: float) -> ExecutionAnswer:
        started = time.monotonic()
        try:
            async with (
                asyncio.timeout(timeout),
                self._client().post(
                    f"{self.base_url}/internal/executions",
                    json=body,
                    headers={"X-Platform-Api-Key": self.api_key},
                ) as response,
            ):
                answer = await response.json(content_type=None)
                status = response.status
        except aiohttp.ClientConnectorError as failure:
            raise ExecutionProxyUnavailable(str(failure)) from failure
        except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
            raise ExecutionFailed(
                "execution_unavailable", f"{type(failure).__name__}: {failure}", transient=True
            ) from failure
        if status == 503:
            raise ExecutionProxyUnavailable(f"execution-proxy answered 503: {answer}")
        if status >= 400 or not isinstance(answer, dict) or "data" not in answer:
            raise _refusal(status, answer)
        return _answer(answer["data"], body, started)

    async def execute_stream(
        self, body: dict[str, Any], *, timeout: float, on_text: Callable[[str], None]
    ) -> ExecutionAnswer:
        """``body`` with ``stream: true``: each ``token`` frame's text is handed to ``on_text`` as it
        arrives; the answer is the ``end`` frame's (its content the texts joined). Failures as
        ``execute``; an ``error`` frame is ``ExecutionFailed`` (transient: ``execute.provider_failed``
        is the provider's, worth another attempt), with the charge of an ``end`` that followed it
        in ``credits``."""
        started = time.monotonic()
        texts: list[str] = []
        frames: dict[str, dict[str, Any]] = {}
        try:
            async with (
                asyncio.timeout(timeout),
                self._client().post(
                    f"{self.base_url}/internal/executions",
                    json={**body, "stream": True},
                    headers={"X-Platform-Api-Key": self.api_key},
                ) as response,
            ):
                if response.status == 503:
                    raise ExecutionProxyUnavailable(f"execution-proxy answered 503: {await response.text()}")
                if response.status >= 400 or "json" in response.content_type:
                    answer = await response.json(content_type=None)
                    if response.status < 400 and isinstance(answer, dict) and "data" in answer:
                        return _answer(answer["data"], body, started)  # a replayed record, as JSON
                    raise _refusal(response.status, answer)
                async for event, data in _sse_frames(response.content):
                    if event == "token":
                        text = str(data.get("content") or "")
                        texts.append(text)
                        on_text(text)
                    elif event in ("end", "error"):
                        frames[event] = data
                        if event == "end":
                            break
        except aiohttp.ClientConnectorError as failure:
            raise ExecutionProxyUnavailable(str(failure)) from failure
        except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
            raise ExecutionFailed(
                "execution_unavailable", f"{type(failure).__name__}: {failure}", transient=True
            ) from failure
        end = frames.get("end")
        if "error" in frames or end is None:
            error = frames.get("error") or {}
            code = str(error.get("code") or "execution_unavailable")
            raise ExecutionFailed(
                code,
                str(error.get("message") or "the stream ended without its end"),
                transient=code in ("execute.provider_failed", "execution_unavailable"),
                credits=int((end or {}).get("credits_charged") or 0),
            )
        usage = end.get("usage") or {}
        return ExecutionAnswer(
            content="".join(texts),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            provider=body.get("provider", ""),
            model=body.get("model", ""),
            credits=int(end.get("credits_charged") or 0),
            execution_id=str(end["execution_id"]) if end.get("execution_id") else None,
            replayed=bool(end.get("replayed")),
            latency_ms=int((time.monotonic() - started) * 1000),
            cancelled=bool(end.get("cancelled")),
        )

    async def cancel(self, body: dict[str, Any], *, timeout: float = 10.0) -> CancelAnswer:
        """Stops the execution ``body`` names (its ``CANCEL_IDENTITY`` fields); idempotent."""
        identity = {key: body[key] for key in CANCEL_IDENTITY if body.get(key) is not None}
        try:
            async with (
                asyncio.timeout(timeout),
                self._client().post(
                    f"{self.base_url}/internal/executions/cancel",
                    json=identity,
                    headers={"X-Platform-Api-Key": self.api_key},
                ) as response,
            ):
                answer = await response.json(content_type=None)
                status = response.status
        except aiohttp.ClientConnectorError as failure:
            raise ExecutionProxyUnavailable(str(failure)) from failure
        except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
            raise ExecutionProxyUnavailable(f"{type(failure).__name__}: {failure}") from failure
        if status == 503:
            raise ExecutionProxyUnavailable(f"execution-proxy answered 503: {answer}")
        if status >= 400 or not isinstance(answer, dict) or "data" not in answer:
            raise _refusal(status, answer)
        data = answer["data"]
        execution = data.get("execution")
        return CancelAnswer(
            state=str(data.get("state")),
            execution=None if not execution else _answer(execution, body, time.monotonic()),
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _answer(data: dict[str, Any], body: dict[str, Any], started: float) -> ExecutionAnswer:
    usage = data.get("usage") or {}
    return ExecutionAnswer(
        content=data.get("content") or "",
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        provider=data.get("provider") or body.get("provider", ""),
        model=data.get("model") or body.get("model", ""),
        credits=int(data.get("creditsCharged") or 0),
        execution_id=str(data["executionId"]) if data.get("executionId") else None,
        replayed=bool(data.get("replayed")),
        latency_ms=int((time.monotonic() - started) * 1000),
        cancelled=bool(data.get("cancelled")),
    )


def _refusal(status: int, answer: Any) -> ExecutionFailed:
    error = (answer or {}).get("error") or {} if isinstance(answer, dict) else {}
    return ExecutionFailed(
        error.get("code") or f"http_{status}",
        error.get("message") or f"execution-proxy answered {status}",
        transient=status == 429 or status >= 500,
    )


async def _sse_frames(content: aiohttp.StreamReader) -> Any:
    """The ``(event, data)`` of each server-sent event frame (``data`` is JSON)."""
    event, data = "message", ""
    async for raw in content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
