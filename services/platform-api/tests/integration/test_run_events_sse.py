"""Live run events over SSE, on the real database: events are appended to ``run-<id>`` streams
directly (as the run workers will), and read back as a lenser's client reads them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_eventstore import NewEvent, Wakeup, append, load_stream
from lf_pg import create_pool
from lf_testing.tokens import bearer
from lf_web import WAKEUP
from platform_api.app import SCHEMA, create_app
from platform_api.application.run_events import HORIZON_RETRY_UNTIL_SECONDS
from platform_api.domain.run_events import stream_id, to_wire
from platform_api.settings import PlatformSettings

# --- the client's side -----------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    id: int | None
    event: str
    data: Any


async def frames(response: aiohttp.ClientResponse, comments: bool = False) -> AsyncIterator[Frame]:
    """The frames of an SSE answer as they arrive; with ``comments``, each comment line too (as a
    frame of event ``:``)."""
    event_id, name, data = None, "message", []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Frame(event_id, name, json.loads("\n".join(data)))
            event_id, name, data = None, "message", []
        elif line.startswith(":"):
            if comments:
                yield Frame(None, ":", line)
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = int(value)
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)


def expected_frames(events) -> list[Frame]:
    """What the contract says a client receives for these recorded events."""
    out = []
    for e in events:
        wire, payload = to_wire(e.type, e.data)
        occurred = e.recorded_at.isoformat().replace("+00:00", "Z")
        out.append(Frame(e.version, wire, {"eventType": wire, "payload": payload, "occurredAt": occurred}))
    return out


# --- the writers' side -----------------------------------------------------------------------


class Runs:
    """Appends run events as a run worker would: its own pool (another process's connections) and,
    when given, a wake-up to call after each commit."""

    def __init__(self, pool: asyncpg.Pool, wake: Any = None) -> None:
        self.pool, self.wake = pool, wake
        self.versions: dict[UUID, int] = {}

    async def queued(self, owner: UUID) -> UUID:
        run_id = uuid4()
        data = {
            "run_id": str(run_id),
            "lenser_id": str(owner),
            "kind": "lens",
            "lens_id": str(uuid4()),
            "version": 1,
            "funding_source": "platform_credit",
            "status": "queued",
        }
        await self.append(run_id, ("RunQueued", data))
        return run_id

    async def append(self, run_id: UUID, *events: tuple[str, dict[str, Any]]) -> None:
        version = self.versions.get(run_id, 0)
        async with self.pool.acquire() as conn, conn.transaction():
            await append(conn, stream_id(run_id), version, [NewEvent(t, d) for t, d in events])
        self.versions[run_id] = version + len(events)
        if self.wake is not None:
            self.wake()

    async def progress(self, run_id: UUID, nodes: int = 2) -> None:
        """A run's life after RunQueued: started, each node started / delta / completed, completed."""
        spent = 0
        await self.append(run_id, ("RunStarted", {"run_id": str(run_id), "status": "running"}))
        for n in range(nodes):
            node = f"node-{n}"
            await self.append(run_id, ("NodeStarted", {"node_id": node}))
            await self.append(run_id, ("NodeStreamDelta", {"node_id": node, "delta": f"text {n}"}))
            spent += 3
            await self.append(
                run_id, ("NodeCompleted", {"node_id": node, "credits": 3, "spent_credits": spent})
            )
        await self.append(run_id, ("RunCompleted", {"run_id": str(run_id), "spent_credits": spent}))

    async def recorded(self, run_id: UUID):
        async with self.pool.acquire() as conn:
            return (await load_stream(conn, stream_id(run_id))).events


@pytest.fixture
async def writer_pool(settings: PlatformSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=2)
    yield pool
    await pool.close()


@asynccontextmanager
async def replica(settings: PlatformSettings, **changes: Any) -> AsyncIterator[TestClient]:
    """One platform-api process on the shared database (two of them are two replicas)."""
    app = create_app(settings.model_copy(update=changes), background=False)
    async with TestClient(TestServer(app)) as client:
        yield client


def events_path(run_id: UUID) -> str:
    return f"/v1/runs/{run_id}/events"


async def open_stream(client: TestClient, run_id: UUID, lenser: UUID, last: int | None = None):
    headers = bearer(lenser)
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    return await client.get(events_path(run_id), headers=headers)


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 10))
async def test_leaving_after_every_kth_event_and_resuming_on_the_other_replica_yields_exactly_the_runs_events(
    settings, writer_pool, lenser, k
):
    async with replica(settings) as one, replica(settings) as two:
        # The writer is this process's appends: both replicas hear them (one directly, one by NOTIFY).
        runs = Runs(writer_pool, wake=one.app[WAKEUP].appended)
        run_id = await runs.queued(lenser)
        writing = asyncio.create_task(_slowly(runs.progress(run_id)))
        received: list[Frame] = []
        done: list[Frame] = []
        replicas, last, connections = [one, two], None, 0
        while not done:
            response = await open_stream(replicas[connections % 2], run_id, lenser, last)
            assert response.status == 200 and response.content_type == "text/event-stream"
            connections += 1
            taken = 0
            async for frame in frames(response):
                if frame.event == "done":
                    done.append(frame)
                    break
                received.append(frame)
                last, taken = frame.id, taken + 1
                if taken == k:
                    break  # the client goes away mid-run
            response.close()
        await writing
    recorded = await runs.recorded(run_id)
    assert received == expected_frames(recorded)
    assert [f.id for f in received] == list(range(1, 10))  # no gap, no duplicate
    assert done[0].data == {"status": "succeeded", "runId": str(run_id)}
    assert connections >= -(-9 // k)


async def _slowly(progress):
    """Let clients connect and leave between appends (each append is its own commit)."""
    await asyncio.sleep(0.05)
    await progress


async def test_a_run_that_finished_while_nobody_listened_replays_and_ends_with_done(
    settings, writer_pool, lenser
):
    runs = Runs(writer_pool)
    run_id = await runs.queued(lenser)
    await runs.append(run_id, ("RunStarted", {"run_id": str(run_id), "status": "running"}))
    await runs.append(run_id, ("RunFailed", {"run_id": str(run_id), "error_code": "provider_failed"}))
    recorded = await runs.recorded(run_id)
    async with replica(settings) as client:
        fresh = [f async for f in frames(await open_stream(client, run_id, lenser))]
        resumed = [f async for f in frames(await open_stream(client, run_id, lenser, last=1))]
        at_the_end = [f async for f in frames(await open_stream(client, run_id, lenser, last=3))]
    done = Frame(None, "done", {"status": "failed", "runId": str(run_id)})
    assert fresh == [*expected_frames(recorded), done]
    assert fresh[2].data["payload"] == {"runId": str(run_id), "errorCode": "provider_failed"}
    assert resumed == [*expected_frames(recorded[1:]), done]
    assert at_the_end == [done]  # it saw the last event but left before done


async def test_a_quiet_stream_gets_keep_alive_comments(settings, writer_pool, lenser):
    run_id = await Runs(writer_pool).queued(lenser)
    async with replica(settings, sse_keepalive_seconds=0.05) as client:
        response = await open_stream(client, run_id, lenser)
        seen = []
        async with asyncio.timeout(5):
            async for frame in frames(response, comments=True):
                seen.append(frame)
                if len(seen) == 3:
                    break
        response.close()
    assert [(f.id, f.event) for f in seen] == [(1, "run.status.changed"), (None, ":"), (None, ":")]
    assert seen[1].data == ": keep-alive"


async def test_a_cursor_older_than_the_replay_window_gets_an_explicit_gap(settings, writer_pool, lenser):
    runs = Runs(writer_pool)
    run_id = await runs.queued(lenser)
    await runs.progress(run_id)  # 9 events in all
    recorded = await runs.recorded(run_id)
    async with replica(settings, run_events_replay_limit=4) as client:
        old = [f async for f in frames(await open_stream(client, run_id, lenser, last=2))]
        recent = [f async for f in frames(await open_stream(client, run_id, lenser, last=6))]
    done = Frame(None, "done", {"status": "succeeded", "runId": str(run_id)})
    assert old == [Frame(5, "gap", {"fromId": 3, "toId": 5}), *expected_frames(recorded[5:]), done]
    assert recent == [*expected_frames(recorded[6:]), done]  # inside the window: no gap


async def test_another_lensers_run_and_an_unknown_run_are_not_found(
    settings, writer_pool, lenser, other_lenser
):
    run_id = await Runs(writer_pool).queued(lenser)
    async with replica(settings) as client:
        theirs = await open_stream(client, run_id, other_lenser)
        unknown = await open_stream(client, uuid4(), lenser)
        anonymous = await client.get(events_path(run_id))
        bad_cursor = await open_stream(client, run_id, lenser, last="x")  # type: ignore[arg-type]
        for response, status, code in (
            (theirs, 404, "run.not_found"),
            (unknown, 404, "run.not_found"),
            (anonymous, 401, "auth.missing_token"),
            (bad_cursor, 400, "validation_error"),
        ):
            assert response.status == status
            assert (await response.json())["error"]["code"] == code


async def test_past_the_connection_limit_new_streams_get_503_with_retry_after(settings, writer_pool, lenser):
    run_id = await Runs(writer_pool).queued(lenser)
    async with replica(settings, sse_max_connections=2, sse_retry_after_seconds=7) as client:
        held = [await open_stream(client, run_id, lenser) for _ in range(2)]
        assert [r.status for r in held] == [200, 200]
        assert "sse_clients_connected 2.0" in await (await client.get("/metrics")).text()
        refused = await open_stream(client, run_id, lenser)
        assert refused.status == 503 and refused.headers["Retry-After"] == "7"
        body = await refused.json()
        assert body["error"]["code"] == "run_events.busy"
        assert body["error"]["details"] == {"retryAfterSeconds": 7}
        held[0].close()  # a client leaves: its place is free again
        for _ in range(50):  # the server notices the client left (the hub's sweep: within a second)
            again = await open_stream(client, run_id, lenser)
            if again.status == 200:
                break
            await asyncio.sleep(0.1)
        assert again.status == 200
        for response in (*held, again):
            response.close()


@pytest.mark.parametrize("woken_by", ["notify", "poll"])
async def test_an_event_appended_by_another_process_reaches_the_client(
    settings, writer_pool, lenser, woken_by
):
    """The writer has its own connections and, for ``notify``, its own process's Wakeup (a NOTIFY
    to the others after its commit); for ``poll``, nobody wakes the listener: its poll finds it."""
    writer_wakeup = Wakeup(settings.database_url, SCHEMA, role=settings.db_role, notify_interval=0)
    runs = Runs(writer_pool, wake=writer_wakeup.appended if woken_by == "notify" else None)
    run_id = await runs.queued(lenser)
    poll = 60.0 if woken_by == "notify" else 0.2  # notify: a poll would never come within the test
    try:
        async with replica(settings, run_events_poll_seconds=poll) as client:
            await writer_wakeup.wait(writer_wakeup.subscribe(), 0.01)  # the writer's LISTEN connection
            await writer_wakeup.listening.wait()
            await client.app[WAKEUP].listening.wait()
            response = await open_stream(client, run_id, lenser)
            stream = frames(response)
            assert (await anext(stream)).id == 1
            # The listener's quick looks after its start's wake-up are over: it waits for the poll.
            await asyncio.sleep(2 * HORIZON_RETRY_UNTIL_SECONDS)
            await runs.append(run_id, ("RunStarted", {"run_id": str(run_id), "status": "running"}))
            async with asyncio.timeout(5):
                started = await anext(stream)
            assert (started.id, started.event) == (2, "run.started")
            if woken_by == "notify":
                assert client.app[WAKEUP].notifications_heard >= 1
            metrics = await (await client.get("/metrics")).text()
            delivered = next(
                line for line in metrics.splitlines() if line.startswith("sse_event_to_client_seconds_count")
            )
            assert float(delivered.split()[-1]) >= 1
            response.close()
    finally:
        await writer_wakeup.close()


async def test_versions_read_out_of_order_still_reach_the_client_in_order(settings, writer_pool, lenser):
    """Reading order is transaction order: a transaction that took its id first (it wrote elsewhere
    before) but appended the run's later version is read before the one that appended the earlier
    version. The client still gets 1, 2, 3, each once."""
    runs = Runs(writer_pool)
    run_id = await runs.queued(lenser)
    stream = stream_id(run_id)
    async with replica(settings) as client:
        wake = client.app[WAKEUP].appended
        response = await open_stream(client, run_id, lenser)
        received = frames(response)
        assert (await anext(received)).id == 1
        async with writer_pool.acquire() as early, early.transaction():
            await append(early, f"elsewhere-{uuid4()}", 0, [NewEvent("NodeLog", {"node_id": "x"})])
            async with writer_pool.acquire() as late, late.transaction():
                await append(late, stream, 1, [NewEvent("RunStarted", {"run_id": str(run_id)})])
            wake()  # version 2 committed, behind the horizon the early transaction holds
            await append(early, stream, 2, [NewEvent("NodeStarted", {"node_id": "a"})])
        wake()
        async with asyncio.timeout(5):
            got = [await anext(received), await anext(received)]
        response.close()
    assert [(f.id, f.event) for f in got] == [(2, "run.started"), (3, "node.started")]


async def test_a_client_that_falls_behind_is_disconnected_and_resumes_without_a_gap(
    settings, writer_pool, lenser
):
    runs = Runs(writer_pool)
    run_id = await runs.queued(lenser)
    async with replica(settings, sse_client_buffer_events=2) as client:
        runs.wake = client.app[WAKEUP].appended
        response = await open_stream(client, run_id, lenser)
        received = frames(response)
        first = await anext(received)
        # One transaction of five: the listener hands them over at once, past the client's buffer.
        await runs.append(run_id, *(("NodeLog", {"node_id": "a", "line": n}) for n in range(5)))
        async with asyncio.timeout(5):
            rest = [frame async for frame in received]  # until the server closes the connection
        assert len(rest) < 5
        resumed = await open_stream(client, run_id, lenser, last=first.id)
        stream = frames(resumed)
        async with asyncio.timeout(5):
            again = [await anext(stream) for _ in range(5)]
        resumed.close()
    assert [f.id for f in again] == [2, 3, 4, 5, 6]
    assert [f.data["payload"]["line"] for f in again] == [0, 1, 2, 3, 4]
