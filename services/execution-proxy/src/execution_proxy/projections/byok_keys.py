"""The BYOK keys each lenser has, one row per key: written in the transaction that records its events.
The secrets are not here (``byok_key_material``, which is not a read model)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from lf_eventstore import RecordedEvent
from lf_projections import Projection


async def stored(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "INSERT INTO byok_keys (key_id, lenser_id, provider, label, suffix, status, created_at)"
        " VALUES ($1, $2, $3, $4, $5, 'active', $6)",
        d["key_id"],
        d["lenser_id"],
        d["provider"],
        d["label"],
        d["suffix"],
        datetime.fromisoformat(d["at"]),
    )


async def revoked(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    d = event.data
    await conn.execute(
        "UPDATE byok_keys SET status = 'revoked', revoked_at = $2 WHERE key_id = $1",
        d["key_id"],
        datetime.fromisoformat(d["at"]),
    )


PROJECTION = Projection(
    name="byok_keys",
    tables=("byok_keys",),
    handlers={"KeyStored": stored, "KeyRevoked": revoked},
)
