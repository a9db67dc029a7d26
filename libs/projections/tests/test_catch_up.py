"""Catching up: a follower applies every committed event once, in reading order, and its checkpoint
never passes an event it has not seen."""

from __future__ import annotations

import asyncpg

from lf_eventstore import NewEvent, append
from lf_projections import catch_up, catch_up_once


async def checkpoint(pool: asyncpg.Pool, name: str) -> tuple[int, int] | None:
    row = await pool.fetchrow(
        "SELECT transaction_id, position FROM follower_checkpoints WHERE name = $1", name
    )
    return None if row is None else (row["transaction_id"], row["position"])


async def test_catch_up_applies_each_event_once_and_its_checkpoint_passes_the_ones_it_ignores(
    tally_pool, tally, record, tallies
):
    await record("s-1", "Counted", "Ignored", "Counted")
    await record("s-2", "Counted")
    last = (await record("s-3", "Ignored"))[-1]

    assert await catch_up(tally_pool, tally) == 5  # every event seen, handled or not
    assert await tallies() == {"s-1": 2, "s-2": 1}
    assert await checkpoint(tally_pool, "tally") == (last.transaction_id, last.position)

    assert await catch_up(tally_pool, tally) == 0  # caught up: nothing applied twice
    assert await tallies() == {"s-1": 2, "s-2": 1}


async def test_catch_up_once_takes_one_batch_and_the_next_goes_on_from_its_checkpoint(
    tally_pool, tally, record, tallies
):
    for n in range(5):
        await record(f"s-{n}", "Counted")

    class Probe:
        """Another follower: once it has caught up, the horizon is past every event above."""

        name, types = "probe", []

        async def handle_batch(self, conn, events):  # never called: it wants no type
            raise AssertionError(events)

    await catch_up(tally_pool, Probe())
    handled = [await catch_up_once(tally_pool, tally, batch_size=2) for _ in range(4)]
    assert handled == [2, 2, 1, 0]
    assert await tallies() == {f"s-{n}": 1 for n in range(5)}


async def test_an_event_committed_after_a_later_one_is_not_skipped(tally_pool, tally, tallies, record):
    """The transaction that appends first may commit last: the follower waits for it (reading below
    the horizon) rather than move its checkpoint past an event it could not see yet."""
    slow = await tally_pool.acquire()
    try:
        transaction = slow.transaction()
        await transaction.start()
        await append(slow, "s-early", 0, [NewEvent("Counted", {})])  # takes its transaction id first
        await record("s-late", "Counted")  # committed while the first is still open

        assert await catch_up_once(tally_pool, tally) == 0
        assert await tallies() == {}

        await transaction.commit()
    finally:
        await tally_pool.release(slow)
    await catch_up(tally_pool, tally)
    assert await tallies() == {"s-early": 1, "s-late": 1}
