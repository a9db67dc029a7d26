"""Per-schema migrations.

A service's schema is built from ordered sets of SQL files: first the libs' own tables (event store,
checkpoints, inbox, rate limits), then the service's. Each file runs once, in its own transaction,
recorded in ``schema_migrations``. An advisory lock keyed by the schema lets replicas start together.
When a role is given, the schema belongs to it and every object is created as that role, so the
service's connections (which run as the role) can touch this schema and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg


@dataclass(frozen=True)
class MigrationSet:
    """SQL files ``NNNN_name.sql`` shipped inside a package folder."""

    name: str
    package: str
    folder: str = "migrations"

    def files(self) -> list[tuple[str, str]]:
        root: Traversable = resources.files(self.package).joinpath(self.folder)
        found = sorted(entry for entry in root.iterdir() if entry.name.endswith(".sql"))
        return [(f"{self.name}/{entry.name}", entry.read_text()) for entry in found]


def _lock_key(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True)


async def ensure_role(conn: asyncpg.Connection, role: str) -> None:
    """Create the service's role where we are allowed to (a dev superuser); a deployment that logs
    in as the role itself, or as a member of it, needs nothing done."""
    if await conn.fetchval(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1", role
    ):
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
    await conn.execute(f'GRANT "{role}" TO CURRENT_USER')


async def ensure_schema(conn: asyncpg.Connection, name: str, owner: str | None) -> None:
    # CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database; a role that only owns its
    # (already created) schema must not need it.
    if await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", name):
        return
    await conn.execute(
        f'CREATE SCHEMA IF NOT EXISTS "{name}"' + (f' AUTHORIZATION "{owner}"' if owner else "")
    )


async def migrate(dsn: str, schema: str, sets: list[MigrationSet], *, role: str | None = None) -> list[str]:
    """Apply what is missing; returns the names applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
        if role:
            await ensure_role(conn, role)
        # The schema, and its shadow where projection rebuilds fill fresh tables before a swap.
        for name in (schema, f"{schema}_rebuild"):
            await ensure_schema(conn, name, role)
        if role:
            await conn.execute(f'SET ROLE "{role}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for migration_set in sets:
            for name, sql in migration_set.files():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
        return applied
    finally:
        await conn.close()
