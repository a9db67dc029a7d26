"""Group commit: concurrent commands on one stream decided in memory, one after another, and written
in one transaction of four round trips; a refused one answered alone; a failed batch retried one
command at a time; two commands naming the same fact never in one batch."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Self

import asyncpg
import pytest

from lf_eventstore import (
    MIGRATIONS,
    Aggregate,
    AggregateRepository,
    Command,
    CommandRunner,
    Decision,
    DomainEvent,
    Facts,
)
from lf_eventstore.commands import _Pending, take_batch
from lf_pg import Statement, create_pool, migrate

SCHEMA = "batches"


class Spent(DomainEvent):
    n: int
    key: str


class Purse(Aggregate):
    """Spends up to 100, each ``key`` once."""

    event_types = {"Spent": Spent}

    def __init__(self) -> None:
        super().__init__()
        self.spent = 0

    def spend(self, n: int, key: str) -> int:
        if self.spent + n > 100:
            raise OverBudget(key)
        self._record(Spent(n=n, key=key))
        return self.spent

    def _apply(self, event: DomainEvent) -> None:
        assert isinstance(event, Spent)
        self.spent += event.n

    def to_snapshot(self) -> dict[str, Any]:
        return {"spent": self.spent}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        purse = cls()
        purse.spent = data["spent"]
        return purse


class OverBudget(Exception):
    pass


PURSES = AggregateRepository(Purse, "purse")
KEYS = (
    "SELECT coalesce(jsonb_agg(key), '[]') FROM spent_keys"
    " WHERE key IN (SELECT jsonb_array_elements_text($1 -> 'keys'))"
)


def spend(n: int, key: str, *, then_refuse: bool = False) -> Command[Purse, Any]:
    """Spend ``n`` once per ``key`` (a key spent already answers "seen"); ``then_refuse``: record the
    spend, then refuse (a decision that fails half-way)."""

    def decide(decision: Decision, purse: Purse) -> Any:
        if key in decision.facts:
            return "seen"
        spent = purse.spend(n, key)
        if then_refuse:
            raise OverBudget(key)
        return spent

    return Command(PURSES, "p", decide, {"actor": "test"}, facts=Facts(KEYS, {"keys": [key]}))


class SpentKeys:
    """Inline projection: one row per spent key (what the facts read)."""

    @staticmethod
    def writes(events: list) -> list:
        keys = [e.data["key"] for e in events]
        return [Statement("INSERT INTO spent_keys (key) SELECT unnest($1::text[])", (keys,))]

    async def apply(self, conn: Any, events: list) -> None:  # pragma: no cover - writes is used
        raise AssertionError("composed, not applied")


@pytest.fixture
async def pool(database_url):
    await migrate(database_url, SCHEMA, [MIGRATIONS])
    conn = await asyncpg.connect(database_url)
    await conn.execute(f"CREATE TABLE {SCHEMA}.spent_keys (key text PRIMARY KEY)")
    await conn.close()
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=4)
    yield pool
    await pool.close()


def runner(pool) -> CommandRunner:
    return CommandRunner(pool, [SpentKeys()])


async def transactions_of(pool) -> list[int]:
    rows = await pool.fetch("SELECT DISTINCT transaction_id::text FROM events ORDER BY 1")
    return [int(r[0]) for r in rows]


async def test_concurrent_commands_on_one_stream_commit_in_one_transaction(pool):
    commands = runner(pool)
    results = await asyncio.gather(*(commands.submit(spend(5, f"k{i}")) for i in range(10)))
    assert sorted(results) == list(range(5, 55, 5))  # each decided after the one before it
    assert len(await transactions_of(pool)) == 1
    assert await pool.fetchval("SELECT version FROM streams WHERE stream_id = 'purse-p'") == 10


async def test_a_refused_command_is_answered_alone_and_the_others_commit(pool):
    commands = runner(pool)
    outcomes = await asyncio.gather(
        commands.submit(spend(40, "a")),
        commands.submit(spend(70, "too-much")),
        commands.submit(spend(50, "b")),
        commands.submit(spend(10, "c")),  # 40 + 50 + 10 = 100: fits once "too-much" is out
        return_exceptions=True,
    )
    assert outcomes[0] == 40 and outcomes[2] == 90 and outcomes[3] == 100
    assert isinstance(outcomes[1], OverBudget)
    keys = await pool.fetch("SELECT key FROM spent_keys ORDER BY key")
    assert [r["key"] for r in keys] == ["a", "b", "c"]
    assert len(await transactions_of(pool)) == 1


async def test_a_command_that_records_then_refuses_leaves_no_trace_in_the_batch(pool):
    commands = runner(pool)
    outcomes = await asyncio.gather(
        commands.submit(spend(10, "a")),
        commands.submit(spend(30, "half-way", then_refuse=True)),
        commands.submit(spend(20, "b")),
        return_exceptions=True,
    )
    assert outcomes[0] == 10 and outcomes[2] == 30  # "b" saw 10 spent, not 40
    assert isinstance(outcomes[1], OverBudget)
    types = await pool.fetch("SELECT data->>'key' AS key FROM events ORDER BY version")
    assert [r["key"] for r in types] == ["a", "b"]


async def test_a_batch_that_fails_at_commit_is_retried_one_command_at_a_time_without_duplicates(
    pool, database_url
):
    # The first transaction that appends more than one event loses its connection at COMMIT (a
    # deferred trigger terminates its own backend: the commit never happens, the client sees the
    # connection drop mid-commit). Sequences are not transactional: only the first one dies.
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        f"""
        CREATE SEQUENCE {SCHEMA}.commits_seen;
        CREATE FUNCTION {SCHEMA}.drop_first_batch() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN
            IF (SELECT count(*) FROM {SCHEMA}.events WHERE transaction_id = pg_current_xact_id()) > 1
               AND nextval('{SCHEMA}.commits_seen') = 1 THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER drop_first_batch AFTER INSERT ON {SCHEMA}.events
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.drop_first_batch();
        """
    )
    await conn.close()
    commands = runner(pool)
    results = await asyncio.gather(*(commands.submit(spend(1, f"k{i}")) for i in range(5)))

    assert sorted(results) == [1, 2, 3, 4, 5]
    events = await pool.fetch("SELECT data->>'key' AS key, transaction_id::text AS tx FROM events")
    assert sorted(r["key"] for r in events) == [f"k{i}" for i in range(5)]  # each once
    assert len({r["tx"] for r in events}) == 5  # retried alone: one transaction each
    # Retrying any of them again changes nothing: the key is known.
    assert await commands.submit(spend(1, "k3")) == "seen"
    assert await pool.fetchval("SELECT count(*) FROM events") == 5


async def test_a_command_is_four_round_trips(database_url):
    pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=1)
    try:
        await migrate(database_url, SCHEMA, [MIGRATIONS])
        await pool.execute("CREATE TABLE IF NOT EXISTS spent_keys (key text PRIMARY KEY)")
        logged: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: logged.append(record.query))
        commands = runner(pool)
        await commands.submit(spend(3, "first"))  # creates the stream
        await asyncio.sleep(0.01)
        logged.clear()
        await commands.submit(spend(3, "second"))
        await asyncio.sleep(0.01)  # the logger is called soon after each statement
    finally:
        await pool.close()
    assert len(logged) == 4, logged
    assert logged[0].startswith("BEGIN") and logged[-1].startswith("COMMIT")


def test_two_commands_naming_the_same_fact_are_not_in_one_batch():
    loop = asyncio.new_event_loop()
    try:
        queue = deque(_Pending(spend(1, key), loop.create_future()) for key in ("a", "b", "a", "c"))
        first = take_batch(queue)
        assert [p.command.facts.needs["keys"] for p in first] == [["a"], ["b"]]
        assert [p.command.facts.needs["keys"] for p in take_batch(queue)] == [["a"], ["c"]]
        queue = deque(_Pending(spend(1, str(n)), loop.create_future()) for n in range(5))
        queue[1].future.cancel()  # its caller left before its batch formed: dropped
        assert [p.command.facts.needs["keys"] for p in take_batch(queue, limit=3)] == [["0"], ["2"], ["3"]]
    finally:
        loop.close()
