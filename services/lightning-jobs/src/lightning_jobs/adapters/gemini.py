"""Gemini chat through execution-proxy's ``/internal/executions`` with ``provider: gemini``,
``service`` funding and ``stream: true``. Its stream (execution-proxy ``http/execute.py``
``stream_sse``) is server-sent events: ``start``, a ``token`` per piece of text
(``{"content": ...}``), then ``end``; a provider failure is an ``error`` frame (``{message, code}``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyUnavailable

PROVIDER = "gemini"


class GeminiChat:
    def __init__(
        self, http: aiohttp.ClientSession, *, base_url: str, api_key: str, timeout_seconds: float
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/internal/executions"
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def stream(self, model: str, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """The answer's pieces of text, as execution-proxy streams them."""
        body = {
            "funding": "service",
            "provider": PROVIDER,
            "model": model,
            "messages": messages,
            "stream": True,
        }
        try:
            async with self._http.post(
                self._url, json=body, headers={"X-Platform-Api-Key": self._api_key}, timeout=self._timeout
            ) as response:
                if response.status == 503:
                    raise ExecutionProxyUnavailable("execution-proxy answered 503")
                if response.status >= 400:
                    raise ExecutionFailed(
                        f"http_{response.status}", _message(await response.text()), transient=False
                    )
                async for event, data in _events(response.content):
                    if event == "token":
                        yield str(data.get("content") or "")
                    elif event == "error":
                        raise ExecutionFailed(
                            str(data.get("code")), str(data.get("message")), transient=False
                        )
                    elif event == "end":
                        return
        except aiohttp.ClientConnectorError as failure:
            raise ExecutionProxyUnavailable(str(failure)) from failure
        except (TimeoutError, aiohttp.ClientError) as failure:
            raise ExecutionFailed(
                "execution_unavailable", type(failure).__name__, transient=True
            ) from failure
        raise ExecutionFailed("stream_cut", "the stream ended without its end frame", transient=True)


async def _events(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str, dict[str, Any]]]:
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


def _message(text: str) -> str:
    try:
        return str(json.loads(text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return text[:200]
