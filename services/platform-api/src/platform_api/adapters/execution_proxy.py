"""execution-proxy's ``POST /internal/executions``, as a run worker calls it for one node attempt.

Its wire format (execution-proxy ``http/internal.py``): camelCase body with ``funding``, the
payer, ``provider``, ``model``, ``messages``, ``referenceId``; header ``X-Platform-Api-Key``; the
answer enveloped, ``data: {content, usage: {input_tokens, output_tokens}, provider, model,
creditsCharged, executionId, replayed}``. ``referenceId`` is the node attempt's
(``<runId>:<nodeId>:<attempt>``): a retried delivery of the same attempt is answered from the
proxy's record of it, never executed or charged twice.

Failures: execution-proxy unreachable (no connection) or answering 503 is an outage, not the
node's: ``ExecutionProxyUnavailable``, on which the worker keeps the job and tries the same attempt
again later (an outage delays a run, it never fails it). A timeout, 429 or any other 5xx is
transient (the node is retried as a new attempt, a few times); any other 4xx is the request's own
fault (the node fails with the proxy's error code).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import aiohttp

from platform_api.domain.run import Execution, NodeWork

# Providers execution-proxy knows, by the model names' usual prefixes; anything else goes to the
# configured default (``local`` in development: the proxy's built-in provider, no key needed).
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


class NodeExecutionFailed(Exception):
    def __init__(self, code: str, message: str, *, transient: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.transient = code, message, transient


def provider_for(model: str, override: str | None, default: str) -> str:
    if override:
        return override
    return next((provider for prefix, provider in _PROVIDER_PREFIXES if model.startswith(prefix)), default)


class ExecutionProxy:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        default_provider: str = "local",
        sponsor_id: UUID | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.default_provider = default_provider
        self.sponsor_id = sponsor_id
        self._session: aiohttp.ClientSession | None = None

    def body(self, work: NodeWork) -> dict[str, Any]:
        """What the proxy is asked for one node attempt. ``user_byok_local`` runs on the lenser's
        own model: the proxy charges nothing for it (its ``service`` funding)."""
        funding = {"user_byok_local": "service"}.get(work.funding_source, work.funding_source)
        body: dict[str, Any] = {
            "funding": funding,
            "provider": provider_for(work.model, work.provider_override, self.default_provider),
            "model": work.model,
            "messages": [{"role": "user", "content": work.prompt}],
            "referenceId": work.reference_id,
        }
        if funding in ("platform_credit", "user_byok_cloud"):
            body["lenserId"] = str(work.lenser_id)
        if funding == "user_byok_cloud":
            body["keyRefId"] = work.byok_key_ref_id
        if funding == "sponsored":
            if self.sponsor_id is None:
                raise NodeExecutionFailed(
                    "sponsor_not_configured", "no sponsor pays for runs here", transient=False
                )
            body["sponsorId"] = str(self.sponsor_id)
        return body

    async def execute(self, work: NodeWork, *, timeout: float) -> Execution:
        body = self.body(work)
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
            raise NodeExecutionFailed(
                "execution_unavailable", f"{type(failure).__name__}: {failure}", transient=True
            ) from failure
        if status == 503:
            raise ExecutionProxyUnavailable(f"execution-proxy answered 503: {answer}")
        if status >= 400 or not isinstance(answer, dict) or "data" not in answer:
            error = (answer or {}).get("error") or {} if isinstance(answer, dict) else {}
            code = error.get("code") or f"http_{status}"
            raise NodeExecutionFailed(
                code,
                error.get("message") or f"execution-proxy answered {status}",
                transient=status == 429 or status >= 500,
            )
        data = answer["data"]
        usage = data.get("usage") or {}
        return Execution(
            output=data.get("content") or "",
            credits=int(data.get("creditsCharged") or 0),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            model=data.get("model") or work.model,
            provider=data.get("provider") or body["provider"],
            execution_id=str(data["executionId"]) if data.get("executionId") else None,
            latency_ms=int((time.monotonic() - started) * 1000),
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
