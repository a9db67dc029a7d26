from __future__ import annotations

import json
from typing import Any

import asyncpg


def jsonb(value: Any) -> str:
    """The one JSON encoding we store: compact, keys sorted (stable hashes and diffs)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


async def _register_codecs(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=jsonb, decoder=json.loads, schema="pg_catalog")


def server_settings(schema: str, role: str | None) -> dict[str, str]:
    # Set at connection start-up, so they are the session's reset values: the pool's
    # RESET ALL on release keeps them, and a connection can never wander to another schema.
    settings = {"search_path": schema, "application_name": schema}
    if role:
        settings["role"] = role
    return settings


async def _session_unchanged(conn: asyncpg.Connection) -> None:
    """Pooled connections never change their session (no SET, LISTEN or session advisory lock:
    listeners and rebuilds use ``connect``), so the default reset query, a round trip on every
    release, has nothing to undo. asyncpg still rolls back a transaction left open."""


async def create_pool(
    dsn: str,
    schema: str,
    *,
    role: str | None = None,
    min_size: int = 2,
    max_size: int = 10,
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings=server_settings(schema, role),
        init=_register_codecs,
        reset=_session_unchanged,
    )


async def connect(dsn: str, schema: str, *, role: str | None = None) -> asyncpg.Connection:
    """A single connection outside the pool (listeners, rebuilds)."""
    conn = await asyncpg.connect(dsn, server_settings=server_settings(schema, role))
    try:
        await _register_codecs(conn)
    except BaseException:
        conn.terminate()  # cancelled half-way: leave no connection behind
        raise
    return conn
