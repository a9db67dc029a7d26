"""The HTTP plumbing every remote adapter shares: one POST, its errors, and reading a stream.

What is the same for every provider lives here, so each adapter module is only its wire format:
- a refusal (status >= 400) becomes ``ProviderError`` with the status, whether it is transient
  (429, 5xx) and the ``Retry-After`` the provider asked for;
- a connection that fails or breaks becomes a transient ``ProviderError``; no answer in time
  becomes ``ProviderTimeout``; a body that is not what the provider promised, a plain one;
- a stream is read line by line, each wait for more bytes bounded by the same timeout, and closing
  it early closes the connection (aiohttp would otherwise keep reading, and the provider generating).

Keys travel in headers only, and no header, body or key is ever logged or put in an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from execution_proxy.adapters.providers.base import ProviderError, ProviderTimeout

MAX_ERROR_MESSAGE = 300
"""Enough of a provider's error message to understand it; never a whole page."""
MAX_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One provider's HTTP call: who it is (for errors), the session, and the timeout."""

    provider: str
    http: aiohttp.ClientSession
    timeout_seconds: float

    async def post_json(self, url: str, headers: Mapping[str, str], body: dict[str, Any]) -> Any:
        """A buffered call: the whole answer, parsed, within the timeout."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                async with self.http.post(url, json=body, headers=dict(headers)) as response:
                    if response.status >= 400:
                        raise await refusal(self.provider, response)
                    raw = await response.read()
        except TimeoutError:
            raise self.timed_out() from None
        except aiohttp.ClientError as error:
            raise connection_failed(self.provider, error) from None
        return parse_json(self.provider, raw)

    @asynccontextmanager
    async def open_stream(
        self, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streamed call whose status and headers came within the timeout. Leaving the block
        before the body ended closes the connection: the provider sees its client go away."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self.http.post(url, json=body, headers=dict(headers))
                if response.status >= 400:
                    try:
                        raise await refusal(self.provider, response)
                    finally:
                        response.release()
        except TimeoutError:
            raise self.timed_out() from None
        except aiohttp.ClientError as error:
            raise connection_failed(self.provider, error) from None
        try:
            yield response
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    async def lines(self, response: aiohttp.ClientResponse) -> AsyncIterator[str]:
        """The body's lines (without their ``\\r\\n``/``\\n``), each wait for more bytes within
        the timeout. Read by chunks rather than ``readline`` so a long line is no error."""
        buffer = b""
        while True:
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    chunk = await response.content.readany()
            except TimeoutError:
                raise self.timed_out("no next chunk") from None
            except aiohttp.ClientError as error:
                raise connection_failed(self.provider, error) from None
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield decode_line(self.provider, line)
        if buffer:
            yield decode_line(self.provider, buffer)

    async def sse_events(self, response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
        """Server-sent events as ``(event, data)``; ``event`` is ``message`` when unnamed.
        Multi-line data is joined with ``\\n``, comments (``:``) skipped, as the SSE spec says."""
        event, data = "", []
        async with aclosing(self.lines(response)) as lines:
            async for line in lines:
                if not line:
                    if data:
                        yield event or "message", "\n".join(data)
                    event, data = "", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)
        if data:  # a last event without its blank line: the body ended right after it
            yield event or "message", "\n".join(data)

    def timed_out(self, what: str = "no answer") -> ProviderTimeout:
        return ProviderTimeout(self.provider, f"{what} within {self.timeout_seconds:g}s")


def decode_line(provider: str, line: bytes) -> str:
    try:
        return line.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        raise ProviderError(provider, "stream is not UTF-8") from None


def parse_json(provider: str, raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ProviderError(provider, "answer is not JSON") from None


def parse_object(provider: str, raw: bytes | str) -> dict[str, Any]:
    document = parse_json(provider, raw)
    if not isinstance(document, dict):
        raise ProviderError(provider, "answer is not a JSON object")
    return document


def malformed(provider: str, what: str) -> ProviderError:
    return ProviderError(provider, f"malformed answer: {what}")


def stream_cut(provider: str, what: str) -> ProviderError:
    """The stream ended before the provider said it was done: a connection cut, worth a retry
    (before the first token; the retrying wrapper decides)."""
    return ProviderError(provider, f"stream ended early: {what}", transient=True)


def connection_failed(provider: str, error: aiohttp.ClientError) -> ProviderError:
    # The class name says enough (refused, reset, payload not completed); the text could carry the URL.
    return ProviderError(provider, f"connection failed ({type(error).__name__})", transient=True)


def is_transient(status: int) -> bool:
    """Worth another try: too many requests, or the provider's own failure (5xx, Anthropic's 529)."""
    return status in (408, 409, 429) or status >= 500


async def refusal(provider: str, response: aiohttp.ClientResponse) -> ProviderError:
    """The error a status >= 400 stands for, with the provider's own message when it gave one."""
    raw = b""
    try:  # read() gives what has arrived: gather the body up to the bound
        while len(raw) < MAX_ERROR_BODY_BYTES and (
            chunk := await response.content.read(MAX_ERROR_BODY_BYTES)
        ):
            raw += chunk
    except aiohttp.ClientError:
        pass
    return ProviderError(
        provider,
        f"HTTP {response.status}: {error_message(raw) or response.reason or 'error'}",
        status=response.status,
        transient=is_transient(response.status),
        retry_after_seconds=retry_after(response.headers),
    )


def error_message(raw: bytes) -> str:
    """The message in any provider's error document: ``{"error": {"message"}}`` (Anthropic, OpenAI,
    Gemini), ``{"error": "..."}`` (Ollama), ``{"detail": ...}`` (fal); else the start of the text."""
    try:
        document = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:MAX_ERROR_MESSAGE]
    return document_message(document)


def document_message(document: Any) -> str:
    if isinstance(document, dict):
        for field in ("error", "detail", "message", "msg"):
            value = document.get(field)
            if isinstance(value, str):
                return value[:MAX_ERROR_MESSAGE]
            if isinstance(value, dict | list):
                found = document_message(value)
                if found:
                    return found
    if isinstance(document, list) and document:
        return document_message(document[0])
    return ""


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked us to wait: ``retry-after-ms`` (OpenAI), ``Retry-After`` as
    seconds or as an HTTP date. None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max((at - datetime.now(UTC)).total_seconds(), 0.0)


def require_key(provider: str, api_key: str | None) -> str:
    if not api_key:
        raise ProviderError(provider, "no API key")
    return api_key


def whole(value: Any) -> int | None:
    """A token count as the provider stated it: a non-negative int, else None (null, absent)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
