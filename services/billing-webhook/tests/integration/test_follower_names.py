"""Follower names lost their service prefix (migrations/0003_follower_names.sql): the rows of the
old names carry over, so neither the relay nor the delivery processor starts again from the
beginning of the log."""

from __future__ import annotations

from billing_webhook.app import MIGRATIONS, RELAY
from billing_webhook.application.processor import DeliveryProcessor


def renaming() -> str:
    [sql] = [sql for s in MIGRATIONS for name, sql in s.files() if name.endswith("_follower_names.sql")]
    return sql


async def test_the_old_followers_checkpoints_carry_over_to_their_new_names(db):
    await db.execute(
        "INSERT INTO follower_checkpoints (name, transaction_id, position) VALUES"
        " ('billing-webhook.relay', 10, 7), ('billing-webhook.deliveries', 12, 9)"
    )
    await db.execute(
        "INSERT INTO follower_leases VALUES"
        " ('billing-webhook.relay', 'old-replica', now() + interval '1 hour')"
    )
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(renaming())  # as the migration runs on a database of the old names

    checkpoints = await db.fetch("SELECT name, transaction_id, position FROM follower_checkpoints")
    assert {row["name"]: (row["transaction_id"], row["position"]) for row in checkpoints} == {
        RELAY: (10, 7),
        DeliveryProcessor.name: (12, 9),
    }
    assert await db.fetchval("SELECT count(*) FROM follower_leases") == 0  # the old version is stopped
