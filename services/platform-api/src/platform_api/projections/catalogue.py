"""The catalogue's read models, as statements composed into each command's write (``writes``).

Pure folds: events in, statements out. Each version becomes one row of its ``*_versions`` table;
each lens or workflow one row of its head table, folded first to its last event of the batch, so
that no two statements touch the same row (lf_projections.projection).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection


def _head_statement(table: str, key: str, rows: list[dict[str, Any]]) -> Statement:
    """Insert or move forward each head row; ``created_at`` stays the first version's, and the
    owner never changes (only the ``...Created`` event carries it: a revision keeps the stored one)."""
    return Statement(
        f"INSERT INTO {table} ({key}, owner_id, name, version, published, created_at, updated_at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::bool[],"
        " $6::timestamptz[], $6::timestamptz[])"
        f" ON CONFLICT ({key}) DO UPDATE SET name = EXCLUDED.name, version = EXCLUDED.version,"
        " published = EXCLUDED.published, updated_at = EXCLUDED.updated_at",
        (
            [r["id"] for r in rows],
            [r["owner_id"] for r in rows],
            [r["name"] for r in rows],
            [r["version"] for r in rows],
            [r["published"] for r in rows],
            [r["at"] for r in rows],
        ),
    )


def _heads(events: list[RecordedEvent], key: str) -> list[dict[str, Any]]:
    """One row per lens or workflow: its last version in ``events``. A revision has no owner in
    its event; the head row already has it (the upsert never writes the owner of an existing row),
    so any placeholder works there: the first version's owner is used when the batch has it."""
    heads: dict[str, dict[str, Any]] = {}
    for event in events:
        data = event.data
        earlier = heads.get(data[key], {})
        heads[data[key]] = {
            "id": data[key],
            "owner_id": data.get("owner_id") or earlier.get("owner_id") or data[key],
            "name": data["definition"]["name"],
            "version": data["version"],
            "published": data["definition"]["published"],
            "at": event.recorded_at,
        }
    return list(heads.values())


def lens_writes(events: list[RecordedEvent]) -> list[Statement]:
    versions = [e for e in events if e.type in LENS_TYPES]
    if not versions:
        return []
    return [
        Statement(
            "INSERT INTO lens_versions (lens_id, version, definition, created_at)"
            " SELECT l, v, d::jsonb, t FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[])"
            " AS x(l, v, d, t)",
            (
                [e.data["lens_id"] for e in versions],
                [e.data["version"] for e in versions],
                [json.dumps(e.data["definition"]) for e in versions],
                [e.recorded_at for e in versions],
            ),
        ),
        _head_statement("lenses", "lens_id", _heads(versions, "lens_id")),
    ]


def workflow_writes(events: list[RecordedEvent]) -> list[Statement]:
    versions = [e for e in events if e.type in WORKFLOW_TYPES]
    if not versions:
        return []
    return [
        Statement(
            "INSERT INTO workflow_versions (workflow_id, version, definition, depth, includes, created_at)"
            " SELECT w, v, d::jsonb, n, ARRAY(SELECT jsonb_array_elements_text(i::jsonb)::uuid), t"
            " FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[], $6::timestamptz[])"
            " AS x(w, v, d, n, i, t)",
            (
                [e.data["workflow_id"] for e in versions],
                [e.data["version"] for e in versions],
                [json.dumps(e.data["definition"]) for e in versions],
                [e.data["depth"] for e in versions],
                [json.dumps(e.data["includes"]) for e in versions],
                [e.recorded_at for e in versions],
            ),
        ),
        _head_statement("workflows", "workflow_id", _heads(versions, "workflow_id")),
    ]


LENS_TYPES = ("LensCreated", "LensRevised")
WORKFLOW_TYPES = ("WorkflowCreated", "WorkflowRevised")


def _projection(
    name: str, tables: tuple[str, ...], writes: Callable[..., list[Statement]], types: tuple[str, ...]
) -> Projection:
    return Projection(name=name, tables=tables, writes=writes, write_types=types)


LENSES = _projection("lenses", ("lenses", "lens_versions"), lens_writes, LENS_TYPES)
WORKFLOWS = _projection("workflows", ("workflows", "workflow_versions"), workflow_writes, WORKFLOW_TYPES)
