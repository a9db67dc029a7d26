"""Read models fed by another service's integration events: one row per key, the newest state wins.

Messages may arrive out of order (redelivery, several publishers' replicas): a row is replaced only
by a state that is newer by its ``updated_at``, so an older message arriving late changes nothing.
One statement, in the consumer's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg


async def upsert_if_newer(
    conn: asyncpg.Connection, table: str, row: Mapping[str, Any], *, key: str, updated_at: str = "updated_at"
) -> None:
    """Insert ``row`` into ``table`` or, if a row with its ``key`` exists and is older, replace it.
    ``table`` and the column names are ours (code, never input)."""
    columns = list(row)
    values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns if column != key)
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE"
        f" SET {updates} WHERE {table}.{updated_at} < EXCLUDED.{updated_at}",
        *row.values(),
    )
