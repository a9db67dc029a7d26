"""A client of execution-proxy's ``POST /internal/executions`` and ``POST
/internal/executions/image``, for the services that execute AI through it (platform-api's run
workers, lightning-jobs' evaluation and work steps and its Gemini images).

Its wire format (execution-proxy ``http/internal.py``): a camelCase body with ``funding``, the
payer, ``provider``, ``model``, ``messages``, ``referenceId``; header ``X-Platform-Api-Key``; the
answer enveloped, ``data: {content, usage: {input_tokens, output_tokens}, provider, model,
creditsCharged, executionId, replayed}`` (an image: ``data: {urls, units, provider, model,
creditsCharged, executionId, replayed}``). A repeated ``referenceId`` is answered from the proxy's
record of the first execution, never executed or charged twice: callers make it one per step.

Failures: execution-proxy unreachable (no connection) or answering 503 is an outage, not the
caller's: ``ExecutionProxyUnavailable``, on which callers keep the step and try it again later (an
outage delays work, it never fails it). A timeout, 429 or any other 5xx is transient; any other 4xx
is the request's own fault (``ExecutionFailed`` says which with ``transient``).
"""

from __future__ import annotations

import asyncio
import time
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
    def __init__(self, code: str, message: str, *, transient: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.transient = code, message, transient


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


@dataclass(frozen=True)
class ImageAnswer:
    """What execution-proxy answered for an image execution that succeeded."""

    urls: tuple[str, ...]
    """CDN URLs, or ``data:<mime>;base64,...`` URIs for images answered inline (Gemini's)."""
    units: int
    provider: str
    model: str
    credits: int
    execution_id: str | None
    replayed: bool


class ExecutionProxyClient:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._session: aiohttp.ClientSession | None = None

    async def execute(self, body: dict[str, Any], *, timeout: float) -> ExecutionAnswer:
        started = time.monotonic()
        data = await self._post("/internal/executions", body, timeout)
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
        )

    async def image(self, body: dict[str, Any], *, timeout: float) -> ImageAnswer:
        """``POST /internal/executions/image``: ``body`` as that route takes it (``funding``,
        ``provider``, ``model``, ``prompt``, ``referenceId``, ...); failures as ``execute``'s."""
        data = await self._post("/internal/executions/image", body, timeout)
        return ImageAnswer(
            urls=tuple(str(url) for url in data.get("urls") or ()),
            units=int(data.get("units") or 0),
            provider=data.get("provider") or body.get("provider", ""),
            model=data.get("model") or body.get("model", ""),
            credits=int(data.get("creditsCharged") or 0),
            execution_id=str(data["executionId"]) if data.get("executionId") else None,
            replayed=bool(data.get("replayed")),
        )

    async def _post(self, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The envelope's ``data`` of a success; else the failure, classified (module docstring)."""
        try:
            async with (
                asyncio.timeout(timeout),
                self._client().post(
                    f"{self.base_url}{path}",
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
            error = (answer or {}).get("error") or {} if isinstance(answer, dict) else {}
            code = error.get("code") or f"http_{status}"
            raise ExecutionFailed(
                code,
                error.get("message") or f"execution-proxy answered {status}",
                transient=status == 429 or status >= 500,
            )
        data: dict[str, Any] = answer["data"]
        return data

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
