"""The relay's checkpoint and the inbox's pruning commit without waiting for the WAL flush; the
appends they follow still wait for it. (Losing a checkpoint in a server crash only publishes its
batch again, which the inbox absorbs: test_relay's crash-after-publishing test.)"""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from lf_eventstore import NewEvent, append
from lf_messaging import Relay
from lf_messaging.pruning import INBOX_RETENTION, prune_inbox
from lf_testing.durability import CommitSettings

SCHEMA = "svc"
CHECKPOINTS, EVENTS, INBOX = f"{SCHEMA}.follower_checkpoints", f"{SCHEMA}.events", f"{SCHEMA}.inbox"


@pytest.fixture
async def commits(pool, database_url) -> AsyncIterator[CommitSettings]:
    admin = await asyncpg.connect(database_url)
    recorded = await CommitSettings.install(admin)
    for table in (CHECKPOINTS, EVENTS, INBOX):
        await recorded.watch(table)
    yield recorded
    await admin.close()


async def test_moving_the_relay_checkpoint_does_not_wait_for_the_flush(
    pool, broker, commits, eventually
) -> None:
    relay = Relay(broker, lambda event: None, ["Private"], name="relay")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await append(conn, f"s-{uuid.uuid4()}", 0, [NewEvent("Private", {})])

        # The read horizon is the server's: another test's open transaction may hide the append a moment.
        async def passed_it() -> bool:
            return await relay.catch_up_once(pool) == 1

        await eventually(passed_it)
    finally:
        await relay.close()

    assert await commits.of(EVENTS) == ["on"]
    # The checkpoint's row is created once (flushed), then moved without a flush.
    assert await commits.of(CHECKPOINTS) == ["on", "off"]


async def test_pruning_the_inbox_does_not_wait_for_the_flush(pool, commits) -> None:
    await pool.execute(
        "INSERT INTO inbox (message_id, routing_key, received_at)"
        " VALUES ('old', 'x.y.v1', now() - $1::interval - interval '1 minute')",
        INBOX_RETENTION,
    )

    assert await prune_inbox(pool) == 1

    assert await commits.of(INBOX) == ["on", "off"]  # the consumer's insert, then the prune
