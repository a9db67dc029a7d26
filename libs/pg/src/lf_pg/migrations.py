"""Per-schema migrations, and who may do what in the schema.

A service's schema is built from ordered sets of SQL files: first the libs' own tables (event store,
checkpoints, inbox, rate limits), then the service's. Each file runs once, in its own transaction,
recorded in ``schema_migrations``.

Two roles per service (DESIGN §9). The *owner* runs the migrations and owns the schema, its shadow
``<schema>_rebuild`` and every object in them: only it may alter, drop, disable triggers, swap
rebuilt tables in. The *runtime* role the service serves with gets ``USAGE`` on the schema and, on
each table, only what the migration sets declare (``MigrationSet.privileges``; by default ``SELECT,
INSERT, UPDATE, DELETE``): on ``events`` only ``INSERT`` and ``SELECT``. Grants are re-applied by
every migrate, so a table added by a later file gets them too. Given only ``role``, that one role
owns everything and runs (the single-role setup of a plain local login).

Migrations are serialised by a ``SHARE ROW EXCLUSIVE`` lock on ``schema_migrations``, taken in each
file's transaction. Only the owner can take it (the runtime role may only read the table, and no
other service can even see the schema), so no other role can hold migrations up, unlike an
advisory key anyone on the server can compute and take.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

RUNTIME_DEFAULT = "SELECT, INSERT, UPDATE, DELETE"
MIGRATIONS_TABLE_PRIVILEGES = ("schema_migrations", "SELECT")


@dataclass(frozen=True)
class MigrationSet:
    """SQL files ``NNNN_name.sql`` shipped inside a package folder.

    ``privileges``: ``(table, "SELECT, INSERT")`` pairs for tables of this set on which the runtime
    role gets less than ``RUNTIME_DEFAULT``.
    """

    name: str
    package: str
    folder: str = "migrations"
    privileges: tuple[tuple[str, str], ...] = ()

    def files(self) -> list[tuple[str, str]]:
        root: Traversable = resources.files(self.package).joinpath(self.folder)
        found = sorted(entry for entry in root.iterdir() if entry.name.endswith(".sql"))
        return [(f"{self.name}/{entry.name}", entry.read_text()) for entry in found]


def shadow_schema(schema: str) -> str:
    """Where projection rebuilds fill fresh tables before swapping them in."""
    return f"{schema}_rebuild"


async def ensure_role(conn: asyncpg.Connection, role: str, *, member: bool) -> None:
    """Create the role where we are allowed to (a dev superuser). ``member``: this login must be
    able to ``SET ROLE`` to it (a deployment that logs in as the role itself needs nothing done)."""
    if member:
        if await conn.fetchval(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1", role
        ):
            return
    elif await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
        return
    # Roles are cluster-wide: another database (or a concurrent test) may create it at the same time.
    await conn.execute(
        f"""
        DO $$ BEGIN
          CREATE ROLE "{role}" NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )
    if member:  # replicas starting together may grant it at the same moment
        await conn.execute(
            f"""
            DO $$ BEGIN
              GRANT "{role}" TO CURRENT_USER;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            """
        )


async def ensure_schema(conn: asyncpg.Connection, name: str, owner: str | None) -> None:
    # CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database; a role that only owns its
    # (already created) schema must not need it.
    if await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", name):
        return
    try:
        await conn.execute(
            f'CREATE SCHEMA IF NOT EXISTS "{name}"' + (f' AUTHORIZATION "{owner}"' if owner else "")
        )
    except (asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
        pass  # a replica created it at the same moment


async def _hand_over(conn: asyncpg.Connection, schema: str, owner: str, runtime: str) -> None:
    """A schema created before the split belongs to the runtime role: give it all to the owner."""
    current = await conn.fetchval(
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", schema
    )
    if current == runtime:
        await conn.execute(f'REASSIGN OWNED BY "{runtime}" TO "{owner}"')


async def _lock(conn: asyncpg.Connection) -> None:
    # Self-conflicting, and compatible with readers: only one migrate at a time per schema.
    await conn.execute("LOCK TABLE schema_migrations IN SHARE ROW EXCLUSIVE MODE")


async def _grant_runtime(
    conn: asyncpg.Connection, schema: str, runtime: str, sets: list[MigrationSet]
) -> None:
    declared = dict([MIGRATIONS_TABLE_PRIVILEGES, *(p for s in sets for p in s.privileges)])
    tables = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p', 'v')",
        schema,
    )
    await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{runtime}"')
    await conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM "{runtime}"')
    for (table,) in tables:
        privileges = declared.get(table, RUNTIME_DEFAULT)
        await conn.execute(f'GRANT {privileges} ON "{schema}"."{table}" TO "{runtime}"')


async def applied_migrations(conn: asyncpg.Connection) -> set[str]:
    """The names in ``schema_migrations`` on the connection's search_path (none: no table yet)."""
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return set()
    return {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}


def missing(sets: list[MigrationSet], done: set[str]) -> list[tuple[str, str]]:
    return [(name, sql) for s in sets for name, sql in s.files() if name not in done]


async def migrate(
    dsn: str,
    schema: str,
    sets: list[MigrationSet],
    *,
    role: str | None = None,
    owner: str | None = None,
) -> list[str]:
    """Apply what is missing, as ``owner``; grant ``role`` (the runtime role) what it may do.

    Without ``owner``, ``role`` owns everything itself (one role); without either, the login does.
    Returns the names applied now.
    """
    owner = owner or role
    conn = await asyncpg.connect(dsn)
    try:
        if owner:
            await ensure_role(conn, owner, member=True)
        if role and role != owner:
            await ensure_role(conn, role, member=False)
        for name in (schema, shadow_schema(schema)):
            await ensure_schema(conn, name, owner)
        if owner and role and role != owner:
            await _hand_over(conn, schema, owner, role)
        if owner:
            await conn.execute(f'SET ROLE "{owner}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        done = await applied_migrations(conn)
        if not done and not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            except (asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError, asyncpg.DuplicateTableError):
                pass  # a replica created it at the same moment
        applied = []
        for name, sql in missing(sets, done):
            async with conn.transaction():
                await _lock(conn)
                if await conn.fetchval("SELECT true FROM schema_migrations WHERE name = $1", name):
                    continue  # a replica applied it while we waited
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
        if role and role != owner:
            async with conn.transaction():
                await _lock(conn)  # concurrent GRANTs on one table fail ("tuple concurrently updated")
                await _grant_runtime(conn, schema, role, sets)
        return applied
    finally:
        await conn.close()
