"""Replaying every stream: snapshots, heads and events the aggregate cannot replay are reported."""

from __future__ import annotations

from typing import Any, Self

import pytest

from lf_eventstore import MIGRATIONS, Aggregate, AggregateRepository, DomainEvent, NewEvent, append
from lf_eventstore.verify import NOTHING, Difference, changed_fields, verify_streams
from lf_pg import create_pool, migrate


class Added(DomainEvent):
    n: int


class Tally(Aggregate):
    event_types = {"Added": Added}

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def add(self, n: int) -> None:
        self._record(Added(n=n))

    def _apply(self, event: DomainEvent) -> None:
        assert isinstance(event, Added)
        self.total += event.n

    def to_snapshot(self) -> dict[str, Any]:
        return {"total": self.total}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        tally = cls()
        tally.total = data["total"]
        return tally


TALLIES = AggregateRepository(Tally, "tally", snapshot_every=3)


@pytest.fixture
async def pool(database_url):
    await migrate(database_url, "store", [MIGRATIONS])
    pool = await create_pool(database_url, "store", min_size=1, max_size=2)
    yield pool
    await pool.close()


async def add(pool, key: str, *amounts: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        tally = await TALLIES.load(conn, key) or Tally()
        for n in amounts:
            tally.add(n)
        await TALLIES.save(conn, key, tally)


async def differences(pool, **options) -> list[Difference]:
    async with pool.acquire() as conn:
        return (await verify_streams(conn, [TALLIES], **options)).differences


@pytest.fixture
async def two_tallies(pool):
    """tally-a: 5 events, a snapshot taken at version 3 (total 6); tally-b: 1 event, no snapshot."""
    await add(pool, "a", 1, 2)
    await add(pool, "a", 3)
    await add(pool, "a", 4, 5)
    await add(pool, "b", 7)
    assert await pool.fetchval("SELECT snapshot_version FROM streams WHERE stream_id = 'tally-a'") == 3


async def test_a_log_whose_snapshots_and_heads_agree_with_the_replay_has_no_differences(pool, two_tallies):
    async with pool.acquire() as conn:
        findings = await verify_streams(conn, [TALLIES])
    assert findings.differences == []
    assert findings.checked == "2 streams replayed, 1 snapshots compared"


async def test_a_snapshot_that_disagrees_with_the_replay_at_its_version_is_reported(pool, two_tallies):
    await pool.execute("UPDATE streams SET snapshot = '{\"total\": 99}' WHERE stream_id = 'tally-a'")
    # A snapshot added where none was taken is checked the same way.
    await pool.execute(
        "UPDATE streams SET snapshot = '{\"total\": 0}', snapshot_version = 1 WHERE stream_id = 'tally-b'"
    )
    assert await differences(pool) == [
        Difference("stream tally-a", "snapshot at version 3", {"total": 6}, {"total": 99}),
        Difference("stream tally-b", "snapshot at version 1", {"total": 7}, {"total": 0}),
    ]


async def test_a_head_that_is_not_the_last_event_and_a_snapshot_past_it_are_reported(pool, two_tallies):
    await pool.execute("UPDATE streams SET version = 9 WHERE stream_id = 'tally-a'")
    await pool.execute(
        "UPDATE streams SET snapshot = '{\"total\": 7}', snapshot_version = 4 WHERE stream_id = 'tally-b'"
    )
    assert await differences(pool) == [
        Difference("stream tally-a", "head version", 5, 9),
        Difference("stream tally-b", "snapshot version", "1..1", 4),
    ]


async def test_unclaimed_streams_unreplayable_events_and_heads_without_events_are_reported(pool, two_tallies):
    async with pool.acquire() as conn:
        await append(conn, "tallyho-1", 0, [NewEvent("Added", {"n": 1})])  # "tally-" is not its prefix
        await append(conn, "tally-c", 0, [NewEvent("Added", {"n": 1}), NewEvent("Removed", {"n": 1})])
        await conn.execute("INSERT INTO streams (stream_id, version) VALUES ('tally-ghost', 2)")

    found = {d.where: d for d in await differences(pool)}

    assert found["stream tallyho-1"] == Difference(
        "stream tallyho-1", "stream prefix", "an aggregate registered for it", NOTHING
    )
    assert found["stream tally-c"].key == "version 2"
    assert str(found["stream tally-c"]).endswith("found Removed that does not replay: KeyError: 'Removed'")
    assert found["stream tally-ghost"] == Difference("stream tally-ghost", "events", "2 events", NOTHING)
    assert len(found) == 3


async def test_past_the_limit_differences_are_counted_not_listed(pool):
    for key in "abcd":
        await add(pool, key, 1)
    await pool.execute("UPDATE streams SET version = 5")
    async with pool.acquire() as conn:
        findings = await verify_streams(conn, [TALLIES], limit=1)
    assert (len(findings.differences), findings.unlisted, findings.count) == (1, 3, 4)


def test_nested_fields_that_differ_are_named_by_their_path():
    expected = {"terms": {"credits": 100, "name": "pack"}, "open": {}}
    found = {"terms": {"credits": 9, "name": "pack"}, "open": {"r1": 5}}
    assert changed_fields(expected, found) == (
        {"terms.credits": 100, "open.r1": NOTHING},
        {"terms.credits": 9, "open.r1": 5},
    )


def test_a_difference_reads_as_where_key_expected_and_found():
    difference = Difference("balances", "lenser_id=42", {"balance": 75, "status": "open"}, NOTHING)
    assert str(difference) == 'balances [lenser_id=42]: expected {balance=75, status="open"}, found nothing'
