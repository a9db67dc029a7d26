"""What every fake AI provider shares: the server, the request log, and the ways to misbehave.

A fake provider (``FakeAnthropic``, ``FakeOpenAI``, ``FakeGemini``, ``FakeOllama``, ``FakeFal``)
subclasses ``FakeProvider`` and only speaks its provider's wire format. Every fake:

- serves on 127.0.0.1 (``await fake.start()``, port 0 by default; ``fake.url``; ``await fake.stop()``);
- records every request in ``fake.requests`` (path, query, headers, parsed body);
- demands ``api_key`` in the provider's own header when given one (any key when None);
- answers ``reply`` split into ``deltas`` (by default one-token pieces of at most three UTF-8 bytes,
  as ``one_token_pieces`` cuts them) with the ``usage`` numbers it is given, at once
  (``delay_between_deltas = 0``: no sleeps, fit for a benchmark) or paced;
- misbehaves on demand: ``fail_with(status, retry_after=..., times=...)`` (the provider's own error
  document and ``Retry-After``), ``hang()`` (never answers) or ``hang(after_deltas=n)`` (sends n deltas
  then stalls), ``break_stream_after(n, how, times=...)`` (n deltas, then malformed data, a dropped
  connection, the provider's in-stream error, or a clean end without the closing frames), and
  ``recover()``;
- notices a client that goes away mid-answer: ``fake.disconnects`` counts them, while
  ``fake.streams_completed`` counts the streams sent to the end. An unpaced stream may be sent whole
  into the socket before the client closes it: to assert a disconnect, pace the stream
  (``delay_between_deltas``) or stall it (``hang(after_deltas=n)``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiohttp import web

BYTES_PER_PIECE = 3
DEFAULT_REPLY = "The quick brown fox jumps over the lazy dog."
BreakHow = Literal["malformed", "drop", "error", "end"]


def one_token_pieces(text: str) -> list[str]:
    """``text`` cut into pieces of at most three UTF-8 bytes (a character is never split), so each
    piece counts as one token however the service counts (``execution_proxy.domain.tokens``)."""
    pieces: list[str] = []
    piece = ""
    for char in text:
        if piece and len((piece + char).encode()) > BYTES_PER_PIECE:
            pieces.append(piece)
            piece = ""
        piece += char
    if piece:
        pieces.append(piece)
    return pieces


@dataclass(frozen=True)
class ProviderCall:
    """One request the fake received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    """The parsed JSON body (None if it was not JSON)."""


@dataclass
class FakeUsage:
    """The usage a fake states, in plain terms; each fake writes it in its provider's fields.

    ``input_tokens`` are plain input (a provider that counts cache reads inside its prompt count,
    like OpenAI and Gemini, is sent ``input_tokens + cache_read_input_tokens``); ``output_tokens``
    None means one per delta sent; ``thoughts_tokens`` only Gemini reports.
    """

    input_tokens: int = 12
    output_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    thoughts_tokens: int = 0


class ClientGone(Exception):
    """The client closed the connection while the fake was answering."""


class FakeProvider:
    name: ClassVar[str] = "provider"
    default_port: ClassVar[int] = 8790
    stream_content_type: ClassVar[str] = "text/event-stream"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        reply: str = DEFAULT_REPLY,
        deltas: Sequence[str] | None = None,
        usage: FakeUsage | None = None,
        delay_between_deltas: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.usage = usage or FakeUsage()
        self.delay_between_deltas = delay_between_deltas
        self.requests: list[ProviderCall] = []
        self.disconnects = 0
        self.streams_completed = 0
        self.port = 0
        self.reply_with(reply, deltas)
        self._failure: tuple[int, float | str | None] | None = None
        self._failures_left: int | None = 0
        self._hang_after: int | None = None
        self._hanging = False
        self._break: tuple[int, BreakHow] | None = None
        self._breaks_left: int | None = None
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # --- knobs -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL a client is configured with."""
        return f"http://127.0.0.1:{self.port}"

    def reply_with(self, reply: str | None = None, deltas: Sequence[str] | None = None) -> None:
        """Answer ``reply`` (streamed as ``one_token_pieces``), or exactly these ``deltas``."""
        self.deltas = list(deltas) if deltas is not None else one_token_pieces(reply or "")
        self.reply = "".join(self.deltas)

    def fail_with(
        self, status: int, *, retry_after: float | str | None = None, times: int | None = 1
    ) -> None:
        """Refuse the next ``times`` requests (None: every one) with ``status`` and the provider's
        error document; ``retry_after`` is sent as the ``Retry-After`` header."""
        self._failure = (status, retry_after)
        self._failures_left = times

    def hang(self, *, after_deltas: int | None = None) -> None:
        """Never answer (until ``recover()`` or ``stop()``); with ``after_deltas``, a stream sends
        that many deltas first, then stalls."""
        if after_deltas is None:
            self._hanging = True
        else:
            self._hang_after = after_deltas

    def break_stream_after(
        self, deltas: int, how: BreakHow = "malformed", *, times: int | None = None
    ) -> None:
        """Break the next ``times`` streams (None: every one) after ``deltas`` deltas: ``malformed``
        data and the end, ``drop`` the connection without ending the body, the provider's in-stream
        ``error``, or ``end`` the body cleanly without the provider's closing frames."""
        self._break = (deltas, how)
        self._breaks_left = times

    def recover(self) -> None:
        """Behave again (and release whatever hangs)."""
        self._failure, self._failures_left = None, 0
        self._hanging, self._hang_after, self._break = False, None, None
        self._released.set()
        self._released = asyncio.Event()

    @property
    def output_tokens(self) -> int:
        return self.usage.output_tokens if self.usage.output_tokens is not None else len(self.deltas)

    @property
    def last(self) -> ProviderCall:
        return self.requests[-1]

    # --- server ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        self.routes(app)
        return app

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, port: int = 0) -> FakeProvider:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    close = stop

    # --- what subclasses use -----------------------------------------------------------------

    def key_of(self, request: web.Request) -> str | None:
        """The key the client sent, read from the provider's header."""
        raise NotImplementedError

    def error(self, status: int, message: str | None = None) -> web.Response:
        """The provider's error answer for ``status``."""
        raise NotImplementedError

    async def admit(self, request: web.Request) -> tuple[ProviderCall, web.StreamResponse | None]:
        """Record the request, then whatever a knob says instead of an answer: a hang, a failure,
        a refused key, a body that is not JSON. None: answer normally."""
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        call = ProviderCall(request.path, dict(request.query), dict(request.headers), body)
        self.requests.append(call)
        if self._hanging:
            try:
                await self.wait(request)
            except ClientGone:
                self.disconnects += 1
                return call, web.Response(status=499)  # nobody reads it
        if self._failure is not None and self._failures_left != 0:
            if self._failures_left is not None:
                self._failures_left -= 1
            status, retry_after = self._failure
            response = self.error(status)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return call, response
        if self.api_key is not None and self.key_of(request) != self.api_key:
            return call, self.error(401)
        if not isinstance(body, dict):
            return call, self.error(400, "the body must be a JSON object")
        return call, None

    async def stream(
        self,
        request: web.Request,
        head: Iterable[bytes],
        deltas: Sequence[bytes],
        tail: Iterable[bytes],
        *,
        malformed: bytes,
        in_stream_error: bytes,
    ) -> web.StreamResponse:
        """Send a stream: ``head`` frames, one frame per delta (paced, stalled or broken as the
        knobs say), then ``tail`` frames. Counts a client that leaves as a disconnect."""
        headers = {"Content-Type": self.stream_content_type, "Cache-Control": "no-cache"}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            for frame in head:
                await self.write(request, response, frame)
            for index in range(len(deltas) + 1):
                if self._hang_after == index:
                    await self.wait(request)
                if self._break is not None and self._break[0] == index and self._breaks_left != 0:
                    return await self._broken(request, response, malformed, in_stream_error)
                if index == len(deltas):
                    break
                if index and self.delay_between_deltas:
                    await self.pause(request, self.delay_between_deltas)
                await self.write(request, response, deltas[index])
            for frame in tail:
                await self.write(request, response, frame)
            await response.write_eof()
            self.streams_completed += 1
        except ClientGone:
            self.disconnects += 1
        return response

    async def _broken(
        self, request: web.Request, response: web.StreamResponse, malformed: bytes, in_stream_error: bytes
    ) -> web.StreamResponse:
        how = self._break[1] if self._break else "malformed"
        if self._breaks_left is not None:
            self._breaks_left -= 1
        if how == "drop":
            # Close the socket mid-body: the chunked body never gets its last chunk.
            if request.transport is not None:
                request.transport.close()
            return response
        if how != "end":
            await self.write(request, response, malformed if how == "malformed" else in_stream_error)
        await response.write_eof()
        return response

    async def write(self, request: web.Request, response: web.StreamResponse, frame: bytes) -> None:
        if self.client_gone(request):
            raise ClientGone
        try:
            await response.write(frame)
        except ConnectionError:  # aiohttp's ClientConnectionResetError is one
            raise ClientGone from None
        await asyncio.sleep(0)  # let the client read, and notice its leaving, between frames

    async def pause(self, request: web.Request, seconds: float) -> None:
        """Sleep ``seconds``, but notice the client leaving meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.client_gone(request):
                raise ClientGone
            await asyncio.sleep(min(left, 0.01))

    async def wait(self, request: web.Request) -> None:
        """Until ``recover()`` or ``stop()``; raises ``ClientGone`` if the client leaves meanwhile."""
        released = self._released
        while not released.is_set():
            if self.client_gone(request):
                raise ClientGone
            await asyncio.sleep(0.01)

    @staticmethod
    def client_gone(request: web.Request) -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()


def json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def run(fake_class: type[FakeProvider], argv: list[str] | None = None) -> None:
    """``python -m lf_testing.fakes.<provider> --port N``: the fake as a server for make dev."""
    parser = argparse.ArgumentParser(prog=f"python -m lf_testing.fakes.{fake_class.name}")
    parser.add_argument("--port", type=int, default=fake_class.default_port)
    parser.add_argument("--api-key", help="the key to demand (default: any)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="the text every answer gives")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between streamed deltas")
    args = parser.parse_args(argv)
    fake = fake_class(api_key=args.api_key, reply=args.reply, delay_between_deltas=args.delay)
    fake.port = args.port
    print(f"fake {fake_class.name} on {fake.url}", flush=True)
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
