"""A client of execution-proxy's ``POST /internal/executions`` and ``POST
/internal/executions/image``, for the services that execute AI through it (platform-api's run
workers, lightning-jobs' evaluation and work steps and its Gemini images).

Its wire format (execution-proxy ``http/internal.py``): a camelCase body with ``funding``, the
payer, ``provider``, ``model``, ``messages``, ``referenceId``; header ``X-Platform-Api-Key``; the
answer enveloped, ``data: {content, usage: {input_tokens, output_tokens}, provider, model,
creditsCharged, executionId, replayed}`` (an image: ``data: {urls, units, provider, model,
creditsCharged, executionId, replayed}``). A repeated ``referenceId`` is answered from the proxy's
record of the first execution, never executed or charged twice: callers make it one per step.

``stream`` asks the same with ``stream: true`` and yields the text as it comes, then the answer
(the frames ``start``, ``token {content}``, ``end {usage, credits_charged, balance_after,
execution_id, cancelled, cut_short, replayed}`` or ``error {message, code}``; ``cut_short``: the
provider did not finish, so the text is the beginning of an answer, not one). With a ``referenceId`` the
execution is detached from the connection: if the caller goes away (or the stream breaks off) it
runs on and is recorded; asking again with the same reference attaches to it while it runs on that
replica (every token from the first) or is answered from its record (one token, ``replayed``).
``cancel`` (``POST /internal/executions/cancel``) stops the execution of a reference on any replica
(charged for what it used; its stream ends with ``cancelled``), or keeps it from ever starting.

Failures: execution-proxy unreachable (no connection) or answering 503 is an outage, not the
caller's: ``ExecutionProxyUnavailable``, on which callers keep the step and try it again later (an
outage delays work, it never fails it). A timeout, 429 or any other 5xx is transient; any other 4xx
is the request's own fault (``ExecutionFailed`` says which with ``transient``). In a stream: an
``error`` frame is ``ExecutionFailed`` with its code (``execute.provider_failed`` transient,
``execute.cancelled`` not), carrying in ``charged`` what was charged when tokens had gone out; a
stream that breaks off before its end is ``execution_unavailable`` (transient: ask again with the
same reference). 409 ``execute.running_elsewhere`` (the reference's execution runs on another
replica of the proxy) is transient the same way: ask again with the same reference, later, and it is
attached to or replayed (``ExecutionFailed.same_reference`` says which failures are so).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

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


SAME_REFERENCE = frozenset({"execution_unavailable", "execute.running_elsewhere"})
"""Failures after which the same reference is asked again (the execution may run on, or runs
elsewhere): never a new reference, which would execute and charge a second time."""


class ExecutionFailed(Exception):
    def __init__(
        self, code: str, message: str, *, transient: bool, charged: ExecutionAnswer | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.transient = code, message, transient
        self.charged = charged
        """A stream that failed after some tokens: what was recorded and charged for them."""

    @property
    def same_reference(self) -> bool:
        """Ask again with the same reference (``SAME_REFERENCE``), not a new one."""
        return self.code in SAME_REFERENCE


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
    """Cut short by a cancel: charged for what it had used."""
    cut_short: bool = False
    """The provider did not finish it (a cancel, the proxy stopping mid-way, the provider breaking
    off): ``content`` is the beginning of an answer, charged, but not an answer."""


CancelState = Literal["cancelled", "cancelling", "ended", "pending"]


@dataclass(frozen=True)
class CancelAnswer:
    """``cancelled``: stopped and recorded (``execution``, ``cancelled`` set); ``ended``: it had
    ended before (``execution`` is its record); ``cancelling``: stopping on its replica, not
    recorded yet (ask again to see it); ``pending``: nothing started, and nothing will."""

    reference_id: str
    execution_id: str
    state: CancelState
    execution: ExecutionAnswer | None


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
        data = await self._post("/internal/executions", body, timeout=timeout)
        return _answer(data, body, started)

    async def stream(self, body: dict[str, Any], *, timeout: float) -> AsyncIterator[str | ExecutionAnswer]:
        """The execution streamed: each text as it comes (``str``), then its ``ExecutionAnswer``
        (``cancelled`` when a cancel cut it short). ``timeout`` bounds the whole stream."""
        started = time.monotonic()
        with _classified_failures():
            async with self._client().post(
                f"{self.base_url}/internal/executions",
                json={**body, "stream": True},
                headers={"X-Platform-Api-Key": self.api_key},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if not response.content_type.startswith("text/event-stream"):
                    # Refused before the first frame: an ordinary enveloped answer.
                    data = _data(response.status, await response.json(content_type=None))
                    answer = _answer(data, body, started)
                    if answer.content:
                        yield answer.content
                    yield answer
                    return
                pieces: list[str] = []
                failure: dict[str, Any] | None = None
                async for name, data in _frames(response.content):
                    if name == "token":
                        pieces.append(data.get("content") or "")
                        yield pieces[-1]
                    elif name == "error":
                        failure = data
                    elif name == "end":
                        answer = _answer(_end_view(data, "".join(pieces)), body, started)
                        if failure is not None:
                            raise _stream_failure(failure, charged=answer)
                        yield answer
                        return
                if failure is not None:
                    raise _stream_failure(failure, charged=None)
                raise ExecutionFailed(
                    "execution_unavailable", "the stream ended before its end frame", transient=True
                )

    async def cancel(
        self,
        funding: str,
        *,
        reference_id: str,
        lenser_id: str | None = None,
        sponsor_id: str | None = None,
        timeout: float,
    ) -> CancelAnswer:
        """Cancel the execution of ``reference_id`` (named as ``execute``'s body names it).
        Idempotent: asking again answers the same, or ``cancelled`` once a ``cancelling`` one is
        recorded. ``timeout`` should exceed the proxy's ``CANCEL_WAIT_SECONDS`` (5 s)."""
        body: dict[str, Any] = {"funding": funding, "referenceId": reference_id}
        if lenser_id is not None:
            body["lenserId"] = str(lenser_id)
        if sponsor_id is not None:
            body["sponsorId"] = str(sponsor_id)
        data = await self._post("/internal/executions/cancel", body, timeout=timeout)
        record = data.get("execution")
        return CancelAnswer(
            reference_id=data["referenceId"],
            execution_id=str(data["executionId"]),
            state=data["state"],
            execution=None if record is None else _answer(record, {}, time.monotonic()),
        )

    async def image(self, body: dict[str, Any], *, timeout: float) -> ImageAnswer:
        """``POST /internal/executions/image``: ``body`` as that route takes it (``funding``,
        ``provider``, ``model``, ``prompt``, ``referenceId``, ...); failures as ``execute``'s."""
        data = await self._post("/internal/executions/image", body, timeout=timeout)
        return ImageAnswer(
            urls=tuple(str(url) for url in data.get("urls") or ()),
            units=int(data.get("units") or 0),
            provider=data.get("provider") or body.get("provider", ""),
            model=data.get("model") or body.get("model", ""),
            credits=int(data.get("creditsCharged") or 0),
            execution_id=str(data["executionId"]) if data.get("executionId") else None,
            replayed=bool(data.get("replayed")),
        )

    async def _post(self, path: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """The envelope's ``data`` of a success; else the failure, classified (module docstring)."""
        with _classified_failures():
            async with (
                asyncio.timeout(timeout),
                self._client().post(
                    f"{self.base_url}{path}", json=body, headers={"X-Platform-Api-Key": self.api_key}
                ) as response,
            ):
                answer = await response.json(content_type=None)
                status = response.status
        return _data(status, answer)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextmanager
def _classified_failures() -> Iterator[None]:
    """A connection refused is an outage (nothing was executed); a timeout, a connection broken
    after it was made or an answer we cannot read is transient: ask again with the same reference,
    which execution-proxy answers from its record."""
    try:
        yield
    except aiohttp.ClientConnectorError as failure:
        raise ExecutionProxyUnavailable(str(failure)) from failure
    except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
        raise ExecutionFailed(
            "execution_unavailable", f"{type(failure).__name__}: {failure}", transient=True
        ) from failure


def _data(status: int, answer: Any) -> dict[str, Any]:
    """The envelope's ``data``, or the failure its status and code say."""
    if status == 503:
        raise ExecutionProxyUnavailable(f"execution-proxy answered 503: {answer}")
    if status >= 400 or not isinstance(answer, dict) or "data" not in answer:
        error = (answer or {}).get("error") or {} if isinstance(answer, dict) else {}
        code = error.get("code") or f"http_{status}"
        raise ExecutionFailed(
            code,
            error.get("message") or f"execution-proxy answered {status}",
            transient=status == 429 or status >= 500 or code in SAME_REFERENCE,
        )
    return answer["data"]


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
        cut_short=bool(data.get("cutShort")),
    )


def _end_view(end: dict[str, Any], content: str) -> dict[str, Any]:
    """An ``end`` frame (snake_case, as /execute/stream's) in the JSON answer's terms."""
    return {
        "content": content,
        "usage": end.get("usage"),
        "creditsCharged": end.get("credits_charged"),
        "executionId": end.get("execution_id"),
        "replayed": end.get("replayed"),
        "cancelled": end.get("cancelled"),
        "cutShort": end.get("cut_short"),
    }


def _stream_failure(error: dict[str, Any], *, charged: ExecutionAnswer | None) -> ExecutionFailed:
    code = error.get("code") or "execute.provider_failed"
    # The codes' statuses: execute.provider_failed 502 (transient), execute.cancelled 409 (final).
    return ExecutionFailed(
        code, error.get("message") or code, transient=code != "execute.cancelled", charged=charged
    )


async def _frames(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as (name, parsed data); comments skipped."""
    name, data = "message", []
    async for raw in content:  # line by line
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
