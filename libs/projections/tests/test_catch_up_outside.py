"""A follower whose batch runs outside the checkpoint's transaction (``catch_up_outside``): the
checkpoint moves only after the whole batch was handled, and a failed batch is handed over again."""

from __future__ import annotations

import asyncpg
import pytest

from lf_eventstore import RecordedEvent
from lf_projections import catch_up, catch_up_once, catch_up_outside


class Probe:
    """A plain follower that wants nothing: once it has caught up, the reading horizon (held back
    by any transaction open on the server) is past every event recorded before."""

    name, types = "probe", []

    async def handle_batch(self, conn, events):
        raise AssertionError(events)


async def visible(pool: asyncpg.Pool) -> None:
    await catch_up(pool, Probe())


class OnPool:
    """Keeps what it was handed; raises once while ``failing``."""

    name, types = "on_pool", ["Counted"]
    catch_up_once = catch_up_outside

    def __init__(self) -> None:
        self.handed: list[list[str]] = []
        self.failing = False

    async def handle_batch_on_pool(self, pool: asyncpg.Pool, events: list[RecordedEvent]) -> None:
        assert isinstance(pool, asyncpg.Pool)  # no transaction of the runner's around it
        self.handed.append([e.stream_id for e in events])
        if self.failing:
            raise ConnectionResetError("the batch stopped half-way")


async def test_a_failed_batch_leaves_the_checkpoint_and_is_handed_over_again_whole(tally_pool, record):
    await record("s-1", "Counted", "Ignored")
    await record("s-2", "Counted")
    await visible(tally_pool)
    follower = OnPool()

    follower.failing = True
    with pytest.raises(ConnectionResetError):
        await catch_up_once(tally_pool, follower)
    follower.failing = False
    assert await catch_up_once(tally_pool, follower) == 3  # every event passed, handled or not
    assert await catch_up_once(tally_pool, follower) == 0

    assert follower.handed == [["s-1", "s-2"], ["s-1", "s-2"]]


async def test_the_checkpoint_of_an_overlapping_runner_that_got_further_is_not_moved_back(tally_pool, record):
    await record("s-1", "Counted")
    await visible(tally_pool)
    behind, ahead = OnPool(), OnPool()

    async def overtaken(pool: asyncpg.Pool, events: list[RecordedEvent]) -> None:
        await record("s-2", "Counted")
        await visible(tally_pool)
        assert await catch_up_once(tally_pool, ahead) == 2  # the other runner passes both events

    behind.handle_batch_on_pool = overtaken  # type: ignore[method-assign]
    assert await catch_up_once(tally_pool, behind) == 1
    assert await catch_up_once(tally_pool, ahead) == 0, "the checkpoint stayed past s-2"
