"""``GET /v1/runs/{runId}/events``: a run's events as server-sent events (seed 001).

Each frame is one event of the run's stream: ``id`` its version, ``event`` its wire type, ``data``
``{eventType, payload, occurredAt}``. The stream replays what the client has not seen (after
``Last-Event-ID``), then follows live (``RunEventsHub``), and ends with ``event: done``
``{status, runId}`` once the run's terminal event was sent, so a run that ended while nobody
listened replays and ends too. ``: keep-alive`` comments keep idle proxies from closing it.

Only the most recent ``RUN_EVENTS_REPLAY_LIMIT`` events are (re)played: a cursor older than that
first gets ``event: gap`` ``{fromId, toId}`` (the versions skipped, its ``id`` the last of them),
never a silent jump.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from aiohttp import web

from lf_contracts.errors import RUN_EVENTS_BUSY, RUN_NOT_FOUND, VALIDATION_ERROR, ApiError
from lf_eventstore import RecordedEvent
from lf_web import PG_POOL, SETTINGS, path_uuid, require_user
from lf_web.envelope import dumps
from platform_api.application.run_events import (
    SSE_EVENT_LATENCY,
    HubFull,
    RunEventsHub,
    RunHead,
    Subscriber,
    events_after,
    run_head,
)
from platform_api.domain.run_events import stream_id, terminal_status, to_wire
from platform_api.http.keys import RUN_EVENTS
from platform_api.settings import PlatformSettings

routes = web.RouteTableDef()
log = structlog.get_logger(__name__)

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEP_ALIVE = b": keep-alive\n\n"


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {dumps(data)}\n\n".encode()


def event_frame(event: RecordedEvent) -> bytes:
    wire_type, payload = to_wire(event.type, event.data)
    body = {"eventType": wire_type, "payload": payload, "occurredAt": event.recorded_at}
    return frame(wire_type, body, event.version)


def last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ApiError(
            VALIDATION_ERROR,
            details={"fields": [{"field": "Last-Event-ID", "message": "must be an event id (an integer)"}]},
        )
    return int(raw)


@routes.get("/v1/runs/{runId}/events")
async def stream_run_events(request: web.Request) -> web.StreamResponse:
    caller = await require_user(request)
    run_id = path_uuid(request, "runId")
    cursor = last_event_id(request)
    pool, hub = request.app[PG_POOL], request.app[RUN_EVENTS]
    settings = request.app[SETTINGS]
    assert isinstance(settings, PlatformSettings)
    stream = stream_id(run_id)
    head = await run_head(pool, stream)
    if head is None or head.owner != str(caller):
        raise ApiError(RUN_NOT_FOUND)  # someone else's run is not told apart from none
    try:
        # Subscribed before the replay reads: whatever is appended meanwhile is in the queue.
        subscriber = hub.subscribe(stream, gone=_gone(request), drop=_drop(request))
    except HubFull:
        retry = settings.sse_retry_after_seconds
        raise ApiError(
            RUN_EVENTS_BUSY, details={"retryAfterSeconds": retry}, headers={"Retry-After": str(retry)}
        ) from None
    try:
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        try:
            await RunEventStream(request, response, hub, subscriber, run_id, settings).serve(cursor, head)
        except ConnectionError:
            pass  # the client left
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The answer has begun: no error envelope now. The stream ends; the client resumes.
            log.warning("run_events.stream_failed", run_id=str(run_id), error=repr(error))
        return response
    finally:
        hub.unsubscribe(subscriber)


def _gone(request: web.Request) -> Callable[[], bool]:
    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return gone


def _drop(request: web.Request) -> Callable[[], None]:
    def drop() -> None:
        if (transport := request.transport) is not None:
            transport.abort()  # its stream's pending write fails at once; the handler returns

    return drop


class RunEventStream:
    """One client's stream: replay, then live, each version once and in order."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        hub: RunEventsHub,
        subscriber: Subscriber,
        run_id: UUID,
        settings: PlatformSettings,
    ) -> None:
        self.response, self.hub, self.subscriber, self.run_id = response, hub, subscriber, run_id
        self.pool = request.app[PG_POOL]
        self.keepalive = settings.sse_keepalive_seconds
        self.replay_limit = settings.run_events_replay_limit
        self.sent = 0  # the version of the last event sent: the client's Last-Event-ID
        self.ended = False

    async def serve(self, cursor: int, head: RunHead) -> None:
        self.sent = cursor
        if cursor >= head.version and (status := terminal_status(head.last_type)) is not None:
            # It saw the run end but left before ``done``.
            await self.response.write(frame("done", {"status": status, "runId": self.run_id}))
            return
        oldest_kept = head.version - self.replay_limit  # versions up to it are not replayed
        if cursor < oldest_kept:
            await self.response.write(frame("gap", {"fromId": cursor + 1, "toId": oldest_kept}, oldest_kept))
            self.sent = oldest_kept
        await self._catch_up(None)
        while not self.ended:
            if not await self._wait():
                await self.response.write(KEEP_ALIVE)
                continue
            if self.subscriber.closed:
                return  # the server stops, the client left, or it fell behind: it resumes
            live = list(self.subscriber.pending)
            self.subscriber.pending.clear()
            await self._send_live(live)

    async def _wait(self) -> bool:
        ready = self.subscriber.ready
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.keepalive):
                await ready.wait()
        woken = ready.is_set()
        ready.clear()
        return woken

    async def _catch_up(self, up_to: int | None) -> None:
        """Send the stream's events after the last one sent, up to ``up_to`` (all when None)."""
        while not self.ended:
            batch = await events_after(self.pool, self.subscriber.stream_id, self.sent, up_to=up_to)
            if not batch:
                return
            await self._send(batch, live=False)
            if up_to is not None and self.sent >= up_to:
                return

    async def _send_live(self, events: list[RecordedEvent]) -> None:
        """The listener's events in one write where they follow each other; those sent already (by
        the replay or a catch-up) skipped, an earlier version not sent yet read from the stream."""
        pending = sorted({e.version: e for e in events if e.version > self.sent}.values(), key=_version)
        while pending and not self.ended:
            before = self.sent
            if pending[0].version > self.sent + 1:
                await self._catch_up(pending[0].version - 1)
            await self._send([e for e in pending if e.version > self.sent], live=True)
            if self.sent == before:
                return  # nothing followed on (cannot happen: a version's predecessors are committed)
            pending = [e for e in pending if e.version > self.sent]

    async def _send(self, events: list[RecordedEvent], *, live: bool) -> None:
        frames, sent = [], []
        for event in events:
            if event.version != self.sent + 1:
                break  # not the next one: the caller reads what is between
            frames.append(event_frame(event))
            sent.append(event)
            self.sent = event.version
            if (status := terminal_status(event.type)) is not None:
                frames.append(frame("done", {"status": status, "runId": self.run_id}))
                self.ended = True
                break
        if not frames:
            return
        await self.response.write(b"".join(frames))
        if live:
            now = time.time()
            for event in sent:
                SSE_EVENT_LATENCY.observe(max(0.0, now - event.recorded_at.timestamp()))


def _version(event: RecordedEvent) -> int:
    return event.version
