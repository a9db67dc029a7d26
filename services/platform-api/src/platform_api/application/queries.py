"""What the catalogue's GET routes read: the inline read models, never the log.

A lens or workflow is visible to its owner, and to everyone once its latest version is published;
anything else is not found (the same answer as no such id).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from platform_api.domain.definitions import LensDefinition, WorkflowDefinition

_VISIBLE = "(h.owner_id = $2 OR h.published)"


async def lens(
    pool: asyncpg.Pool, caller: UUID, lens_id: UUID, version: int | None = None
) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT h.lens_id, h.owner_id, v.version, v.definition, h.version AS latest, h.created_at,"
        " v.created_at AS version_created_at FROM lenses h JOIN lens_versions v USING (lens_id)"
        f" WHERE h.lens_id = $1 AND {_VISIBLE} AND v.version = coalesce($3, h.version)",
        lens_id,
        caller,
        version,
    )
    return _lens(row) if row else None


async def lenses(
    pool: asyncpg.Pool, caller: UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The caller's own lenses, newest first, each at its latest version."""
    rows = await pool.fetch(
        "SELECT h.lens_id, h.owner_id, v.version, v.definition, h.version AS latest, h.created_at,"
        " v.created_at AS version_created_at, count(*) OVER () AS total"
        " FROM lenses h JOIN lens_versions v ON v.lens_id = h.lens_id AND v.version = h.version"
        " WHERE h.owner_id = $1 ORDER BY h.created_at DESC, h.lens_id LIMIT $2 OFFSET $3",
        caller,
        limit,
        offset,
    )
    return [_lens(r) for r in rows], await _total(pool, "lenses", caller, rows)


async def workflow(
    pool: asyncpg.Pool, caller: UUID, workflow_id: UUID, version: int | None = None
) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT h.workflow_id, h.owner_id, v.version, v.definition, v.depth, h.version AS latest,"
        " h.created_at, v.created_at AS version_created_at"
        " FROM workflows h JOIN workflow_versions v USING (workflow_id)"
        f" WHERE h.workflow_id = $1 AND {_VISIBLE} AND v.version = coalesce($3, h.version)",
        workflow_id,
        caller,
        version,
    )
    return _workflow(row) if row else None


async def workflows(
    pool: asyncpg.Pool, caller: UUID, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    rows = await pool.fetch(
        "SELECT h.workflow_id, h.owner_id, v.version, v.definition, v.depth, h.version AS latest,"
        " h.created_at, v.created_at AS version_created_at, count(*) OVER () AS total"
        " FROM workflows h JOIN workflow_versions v"
        " ON v.workflow_id = h.workflow_id AND v.version = h.version"
        " WHERE h.owner_id = $1 ORDER BY h.created_at DESC, h.workflow_id LIMIT $2 OFFSET $3",
        caller,
        limit,
        offset,
    )
    return [_workflow(r) for r in rows], await _total(pool, "workflows", caller, rows)


async def _total(pool: asyncpg.Pool, table: str, caller: UUID, rows: list[asyncpg.Record]) -> int:
    # A page past the end has no row to carry a window count: ask for it then only.
    if rows and "total" in rows[0]:
        return rows[0]["total"]
    return await pool.fetchval(f"SELECT count(*) FROM {table} WHERE owner_id = $1", caller)


def _common(row: asyncpg.Record, key: str) -> dict[str, Any]:
    return {
        "id": row[key],
        "version": row["version"],
        "latestVersion": row["latest"],
        "createdAt": row["created_at"],
        "versionCreatedAt": row["version_created_at"],
    }


def _lens(row: asyncpg.Record) -> dict[str, Any]:
    definition = LensDefinition.model_validate(row["definition"]).model_dump(by_alias=True, mode="json")
    return {**_common(row, "lens_id"), **definition}


def _workflow(row: asyncpg.Record) -> dict[str, Any]:
    definition = WorkflowDefinition.model_validate(row["definition"]).model_dump(by_alias=True, mode="json")
    return {**_common(row, "workflow_id"), **definition, "depth": row["depth"]}
