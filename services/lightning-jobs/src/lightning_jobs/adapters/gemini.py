"""Gemini chat through execution-proxy's ``/internal/executions`` with ``provider: gemini``,
``service`` funding and ``stream: true``, on the shared client's ``stream``
(``lf_service.execution_proxy``: its server-sent events, ``start``, a ``token`` per piece of text,
``end``, a provider failure an ``error`` frame, are read there, and only there). No referenceId:
a message is asked once, never retried.

Gemini images through ``/internal/executions/image`` (``lf_service.execution_proxy``), ``service``
funding too: a Gemini image model answers its image inline, as a ``data:<mime>;base64,<data>`` URI,
which is seed 002's ``{b64_json, mimeType}`` already."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from lf_service.execution_proxy import ExecutionFailed, ExecutionProxyClient

PROVIDER = "gemini"


class GeminiChat:
    def __init__(self, client: ExecutionProxyClient, *, timeout_seconds: float) -> None:
        self.client, self.timeout_seconds = client, timeout_seconds

    async def stream(self, model: str, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """The answer's pieces of text, as execution-proxy streams them (the shared client's
        ``stream``: its frames, failures and their classes are ``lf_service.execution_proxy``'s)."""
        body = {"funding": "service", "provider": PROVIDER, "model": model, "messages": messages}
        async with aclosing(self.client.stream(body, timeout=self.timeout_seconds)) as stream:
            async for piece in stream:
                if isinstance(piece, str):
                    yield piece


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
