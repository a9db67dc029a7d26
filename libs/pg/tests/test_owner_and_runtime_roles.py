"""The owner migrates and owns; the runtime role a service serves with may only do its work.

Each test makes its own login roles (random names: roles are cluster-wide and other test runs share
the server) and drops them afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import lf_eventstore
import lf_projections
from lf_eventstore import NewEvent, append, read_after
from lf_pg import DatabaseAccess, MigrationSet, MigrationsPending, migrate
from lf_pg.pool import connect

SETS: list[MigrationSet] = [lf_eventstore.MIGRATIONS, lf_projections.MIGRATIONS]


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{user}@{parts.hostname}:{parts.port}", parts.path, "", ""))


@dataclass
class Service:
    schema: str
    owner: str
    runtime: str
    runtime_url: str  # logs in as the runtime role itself: no SET ROLE to undo


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[dict[str, Service]]:
    """Two services' schemas, each with an owner and a runtime login of its own."""
    suffix = uuid.uuid4().hex[:10]
    made = {
        schema: Service(schema, f"t_{schema}_owner_{suffix}", f"t_{schema}_{suffix}", "")
        for schema in ("wallet", "billing")
    }
    admin = await asyncpg.connect(database_url)
    try:
        for service in made.values():
            await admin.execute(f'CREATE ROLE "{service.runtime}" LOGIN')
            service.runtime_url = as_user(database_url, service.runtime)
            access = DatabaseAccess(database_url, service.schema, service.runtime, None, service.owner)
            await access.migrate(SETS)
        yield made
    finally:
        roles = ", ".join(f'"{r}"' for s in made.values() for r in (s.owner, s.runtime))
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid()",
            [r for s in made.values() for r in (s.owner, s.runtime)],
        )
        await admin.execute(f"DROP OWNED BY {roles} CASCADE")
        await admin.close()
        for role in (r for s in made.values() for r in (s.owner, s.runtime)):
            cleanup = await asyncpg.connect(database_url)
            try:
                await cleanup.execute(f'DROP ROLE IF EXISTS "{role}"')
            finally:
                await cleanup.close()


async def runtime_login(service: Service) -> asyncpg.Connection:
    return await connect(service.runtime_url, service.schema)


FORBIDDEN_ON_THE_LOG = [
    "UPDATE events SET data = '{\"amount\": 1000000}'",
    "DELETE FROM events",
    "TRUNCATE events",
    "ALTER TABLE events DISABLE TRIGGER events_append_only_rows",
    "ALTER TABLE events DISABLE TRIGGER ALL",
    "DROP TRIGGER events_append_only_rows ON events",
    "SET session_replication_role = replica",  # would skip every trigger of the session
    "ALTER TABLE events ADD COLUMN forged boolean",
    "DROP TABLE events",
    "DELETE FROM streams",
    "TRUNCATE streams",
    "UPDATE schema_migrations SET name = name",
    "LOCK TABLE schema_migrations IN SHARE ROW EXCLUSIVE MODE",
    "CREATE TABLE stray (id int)",
    "DROP TABLE follower_checkpoints",
    "ALTER TABLE follower_leases OWNER TO CURRENT_USER",
    "CREATE TRIGGER sneak BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_refuse_change()",
]


@pytest.mark.parametrize("statement", FORBIDDEN_ON_THE_LOG)
async def test_the_runtime_role_is_refused_every_statement_that_could_change_history(services, statement):
    wallet = services["wallet"]
    conn = await runtime_login(wallet)
    try:
        async with conn.transaction():
            await append(conn, "wallet-1", 0, [NewEvent("CreditsDeposited", {"amount": 5})])
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            async with conn.transaction():
                await conn.execute(statement)
        # Refused for want of the privilege, not caught by a trigger the owner could switch off.
        assert "append-only" not in str(refused.value)
        assert [e.data for e in await read_after(conn, lf_eventstore.START)] in ([], [{"amount": 5}])
    finally:
        await conn.close()


async def test_the_runtime_role_appends_reads_and_keeps_its_bookkeeping(services):
    wallet = services["wallet"]
    conn = await runtime_login(wallet)
    try:
        assert await conn.fetchval("SELECT current_user") == wallet.runtime
        async with conn.transaction():
            await append(conn, "wallet-1", 0, [NewEvent("Opened", {})])
            await append(conn, "wallet-1", 1, [NewEvent("Credited", {"n": 1})])
        await conn.execute("INSERT INTO follower_checkpoints (name) VALUES ('ledger')")
        await conn.execute("UPDATE follower_checkpoints SET position = 2 WHERE name = 'ledger'")
        assert await conn.fetchval("SELECT version FROM streams WHERE stream_id = 'wallet-1'") == 2
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(
            [f for s in SETS for f in s.files()]
        )
    finally:
        await conn.close()


async def test_a_service_cannot_touch_another_services_schema(services):
    billing = await runtime_login(services["billing"])
    try:
        for statement in (
            "SELECT * FROM wallet.events",
            "INSERT INTO wallet.follower_leases VALUES ('ledger', 'billing', now() + interval '1 day')",
            "LOCK TABLE wallet.schema_migrations IN SHARE ROW EXCLUSIVE MODE",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with billing.transaction():
                    await billing.execute(statement)
    finally:
        await billing.close()


async def test_migrations_go_ahead_whatever_another_services_role_holds(services, database_url):
    """Before, migrations waited on an advisory key anyone could compute and take."""
    wallet, billing = services["wallet"], services["billing"]
    conn = await runtime_login(billing)
    old_key = int.from_bytes(hashlib.sha256(b"migrate:wallet").digest()[:8], "big", signed=True)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", old_key)
        access = DatabaseAccess(database_url, "wallet", wallet.runtime, None, wallet.owner)
        assert await asyncio.wait_for(access.migrate([*SETS, EXTRA]), 10) == ["extra/0001_extra.sql"]
    finally:
        await conn.close()


class ExtraMigration(MigrationSet):
    """A later file of a service's own, added after the first deploy."""

    def files(self) -> list[tuple[str, str]]:
        return [("extra/0001_extra.sql", "CREATE TABLE extra (id int)")]


EXTRA = ExtraMigration("extra", "lf_pg")


async def test_serve_applies_nothing_as_a_runtime_login_and_says_what_is_missing(services):
    wallet = services["wallet"]
    # Compose: serve logs in as the runtime role, with no owner login.
    serving = DatabaseAccess(wallet.runtime_url, "wallet")
    assert await serving.migrate_before_serving(SETS) == []  # all applied: nothing to do
    with pytest.raises(MigrationsPending, match=r"1 migration\(s\) of schema wallet missing \(extra/"):
        await serving.migrate_before_serving([*SETS, EXTRA])


async def test_a_second_migrate_applies_nothing_and_keeps_the_grants(services, database_url):
    wallet = services["wallet"]
    again = await migrate(database_url, "wallet", SETS, role=wallet.runtime, owner=wallet.owner)
    assert again == []
    conn = await runtime_login(wallet)
    try:
        async with conn.transaction():
            await append(conn, "w", 0, [NewEvent("Opened", {})])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM events")
    finally:
        await conn.close()


async def test_a_schema_made_before_the_split_is_handed_to_the_owner(database_url):
    suffix = uuid.uuid4().hex[:10]
    owner, runtime = f"t_owner_{suffix}", f"t_runtime_{suffix}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE ROLE "{runtime}" LOGIN')
        await migrate(database_url, "wallet", SETS, role=runtime)  # one role owned it all
        await migrate(database_url, "wallet", SETS, role=runtime, owner=owner)
        owners = await admin.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class"
            " WHERE relnamespace = 'wallet'::regnamespace"
        )
        assert [r["owner"] for r in owners] == [owner]
        conn = await connect(as_user(database_url, runtime), "wallet")
        try:
            async with conn.transaction():
                await append(conn, "w", 0, [NewEvent("Opened", {})])
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("ALTER TABLE events DISABLE TRIGGER ALL")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP OWNED BY "{owner}", "{runtime}" CASCADE')
        await admin.execute(f'DROP ROLE IF EXISTS "{owner}", "{runtime}"')
        await admin.close()


async def test_serve_on_a_fresh_database_creates_the_roles_and_migrates_as_the_owner(database_url):
    """make dev's first start: a superuser login, DB_ROLE and DB_OWNER_ROLE that do not exist yet."""
    suffix = uuid.uuid4().hex[:10]
    owner, runtime = f"t_owner_{suffix}", f"t_runtime_{suffix}"
    access = DatabaseAccess(database_url, "wallet", runtime, None, owner)
    admin = await asyncpg.connect(database_url)
    try:
        applied = await access.migrate_before_serving(SETS)
        assert applied == [name for s in SETS for name, _ in s.files()]
        assert await access.migrate_before_serving(SETS) == []
        assert (
            await admin.fetchval(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'wallet.events'::regclass"
            )
            == owner
        )
    finally:
        await admin.execute(f'DROP OWNED BY "{owner}", "{runtime}" CASCADE')
        await admin.execute(f'DROP ROLE IF EXISTS "{owner}", "{runtime}"')
        await admin.close()


async def test_replicas_migrating_at_once_apply_each_file_once(database_url):
    suffix = uuid.uuid4().hex[:10]
    owner, runtime = f"t_owner_{suffix}", f"t_runtime_{suffix}"
    access = DatabaseAccess(database_url, "wallet", runtime, None, owner)
    admin = await asyncpg.connect(database_url)
    try:
        applied = await asyncio.gather(*(access.migrate(SETS) for _ in range(4)))
        everything = [name for s in SETS for name, _ in s.files()]
        assert sorted(name for names in applied for name in names) == sorted(everything)
        assert await admin.fetchval("SELECT count(*) FROM wallet.schema_migrations") == len(everything)
    finally:
        await admin.execute(f'DROP OWNED BY "{owner}", "{runtime}" CASCADE')
        await admin.execute(f'DROP ROLE IF EXISTS "{owner}", "{runtime}"')
        await admin.close()
