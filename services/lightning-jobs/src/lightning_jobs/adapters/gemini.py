"""Gemini chat through execution-proxy's ``/internal/executions`` with ``provider: gemini``,
``service`` funding and ``stream: true``. Its stream (execution-proxy ``http/execute.py``
``stream_sse``) is server-sent events: ``start``, a ``token`` per piece of text
(``{"content": ...}``), then ``end``; a provider failure is an ``error`` frame (``{message, code}``).

Gemini images through ``/internal/executions/image`` (``lf_service.execution_proxy``), ``service``
funding too: a Gemini image model answers its image inline, as a ``data:<mime>;base64,<data>`` URI,
which is seed 002's ``{b64_json, mimeType}`` already."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyClient, ExecutionProxyUnavailable

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


DATA_URI = re.compile(r"data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=]+)")


@dataclass(frozen=True)
class GeneratedImage:
    b64_json: str
    mime_type: str


class GeminiImages:
    def __init__(self, client: ExecutionProxyClient, *, model: str, timeout_seconds: float) -> None:
        self.client, self.model, self.timeout_seconds = client, model, timeout_seconds

    async def generate(self, prompt: str) -> GeneratedImage:
        """One image of ``prompt``; ``ExecutionFailed`` or ``ExecutionProxyUnavailable`` if none."""
        body = {
            "funding": "service",
            "provider": PROVIDER,
            "model": self.model,
            "prompt": prompt,
            "num_images": 1,
            # No referenceId: nothing here retries a request, and with one execution-proxy would keep
            # every image (a free route's, megabytes each) a day for a retry that never comes.
        }
        answer = await self.client.image(body, timeout=self.timeout_seconds)
        inline = DATA_URI.fullmatch(answer.urls[0]) if answer.urls else None
        if inline is None:  # a model that answers with a link (fal's) is not a Gemini image model
            raise ExecutionFailed("not_inline", f"{self.model} answered no inline image", transient=False)
        return GeneratedImage(b64_json=inline.group(2), mime_type=inline.group(1))


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
