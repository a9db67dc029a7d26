"""One active runner per follower, elected by a lease in the service's own schema.

Each test makes its own login roles (random names: roles are cluster-wide and other test runs share
the server) and drops them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import lf_eventstore
import lf_projections
from lf_eventstore import NewEvent, RecordedEvent, Wakeup, append
from lf_pg import DatabaseAccess, create_pool
from lf_pg.pool import connect
from lf_projections import FollowerRunner


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{user}@{parts.hostname}:{parts.port}", parts.path, "", ""))


@pytest.fixture
async def logins(database_url: str) -> AsyncIterator[dict[str, str]]:
    """Runtime logins of two services, ``wallet`` and ``billing``, each on its own schema."""
    suffix = uuid.uuid4().hex[:10]
    roles = {
        schema: (f"t_{schema}_owner_{suffix}", f"t_{schema}_{suffix}") for schema in ("wallet", "billing")
    }
    admin = await asyncpg.connect(database_url)
    try:
        for schema, (owner, runtime) in roles.items():
            await admin.execute(f'CREATE ROLE "{runtime}" LOGIN')
            access = DatabaseAccess(database_url, schema, runtime, None, owner)
            await access.migrate([lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS])
        yield {schema: as_user(database_url, runtime) for schema, (_, runtime) in roles.items()}
    finally:
        everyone = [role for pair in roles.values() for role in pair]
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid()",
            everyone,
        )
        await admin.execute("DROP OWNED BY " + ", ".join(f'"{r}"' for r in everyone) + " CASCADE")
        for role in everyone:
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


class Recording:
    """A follower that remembers what it handled."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.types = None
        self.handled: list[str] = []

    async def handle_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        self.handled += [e.stream_id for e in events]


@contextlib.asynccontextmanager
async def running(runner: FollowerRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check, timeout: float) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, "not within the time limit"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def append_one(pool: asyncpg.Pool, stream: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await append(conn, stream, 0, [NewEvent("Happened", {})])


async def test_another_services_role_cannot_keep_the_ledger_follower_from_running(logins):
    billing = await connect(logins["billing"], "billing")
    # What billing's role could do before: take wallet's follower lock (the key is public) ...
    old_key = int.from_bytes(hashlib.sha256(b"follower:wallet:ledger").digest()[:8], "big", signed=True)
    assert await billing.fetchval("SELECT pg_try_advisory_lock($1)", old_key)
    # ... and now cannot even see wallet's lease.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await billing.execute(
            "INSERT INTO wallet.follower_leases VALUES ('ledger', 'billing', now() + interval '1 day')"
        )
    pool = await create_pool(logins["wallet"], "wallet", min_size=1, max_size=4)
    wakeup = Wakeup(logins["wallet"], "wallet")
    ledger = Recording("ledger")
    try:
        async with running(FollowerRunner(ledger, pool, wakeup, poll_seconds=0.1, lease_seconds=1)):
            await append_one(pool, "wallet-1")

            async def handled() -> bool:
                return ledger.handled == ["wallet-1"]

            # Generous: followers read below the horizon, which other test runs on the server can
            # hold back for a while. Before, it never came.
            await until(handled, timeout=30)
    finally:
        await wakeup.close()
        await pool.close()
        await billing.close()


async def test_a_standby_takes_over_once_the_lease_of_a_dead_runner_expires_and_not_before(logins):
    pool = await create_pool(logins["wallet"], "wallet", min_size=1, max_size=4)
    wakeup = Wakeup(logins["wallet"], "wallet")
    ledger = Recording("ledger")
    # A runner that renewed its lease and was then killed leaves exactly this row behind.
    await pool.execute(
        "INSERT INTO follower_leases VALUES ('ledger', 'dead-replica', now() + interval '1500 milliseconds')"
    )
    await append_one(pool, "wallet-1")
    try:
        runner = FollowerRunner(ledger, pool, wakeup, poll_seconds=0.1, lease_seconds=1)
        async with running(runner):
            await asyncio.sleep(0.8)
            assert ledger.handled == []  # the dead runner's lease still runs
            assert await pool.fetchval("SELECT holder FROM follower_leases") == "dead-replica"

            async def taken_over() -> bool:
                return ledger.handled == ["wallet-1"]

            await until(taken_over, timeout=30)  # reading waits for the horizon too
            assert await pool.fetchval("SELECT holder FROM follower_leases") == runner.lease.holder
    finally:
        await wakeup.close()
        await pool.close()


async def test_a_standby_leaves_a_live_runner_alone_and_takes_over_as_soon_as_it_stops(logins):
    pool = await create_pool(logins["wallet"], "wallet", min_size=1, max_size=6)
    wakeup = Wakeup(logins["wallet"], "wallet")
    first, second = Recording("ledger"), Recording("ledger")
    active = FollowerRunner(first, pool, wakeup, poll_seconds=0.1, lease_seconds=1.5)
    standby = FollowerRunner(second, pool, wakeup, poll_seconds=0.1, lease_seconds=1.5)

    async def holder() -> str:
        return await pool.fetchval("SELECT holder FROM follower_leases")

    async with running(active) as active_task:

        async def active_holds() -> bool:
            return await holder() == active.lease.holder

        await until(active_holds, timeout=5)
        try:
            async with running(standby):
                await append_one(pool, "wallet-1")

                async def first_handled() -> bool:
                    return first.handled == ["wallet-1"]

                await until(first_handled, timeout=30)
                await asyncio.sleep(2)  # longer than a lease: renewed all along, never taken
                assert await active_holds()
                assert second.handled == []

                active_task.cancel()  # stops, letting its lease go (renewed < 0.5 s ago: 1 s left)
                with contextlib.suppress(asyncio.CancelledError):
                    await active_task
                await append_one(pool, "wallet-2")

                async def took_over() -> bool:
                    return await holder() == standby.lease.holder

                assert await until(took_over, timeout=5) < 0.9

                async def handled() -> bool:
                    return second.handled == ["wallet-2"]

                await until(handled, timeout=30)
        finally:
            await wakeup.close()
            await pool.close()
