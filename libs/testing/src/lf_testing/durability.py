"""Which transactions waited for the WAL flush: ``CommitSettings``.

``SHOW synchronous_commit`` after a transaction tells nothing (a transaction-local setting is gone
by then), and timing a commit is no test. So a deferred constraint trigger on each watched table
records, once per transaction that wrote it, ``current_setting('synchronous_commit')`` as it stands
when the transaction commits: deferred triggers fire at COMMIT, after every statement (and every
function's own ``SET`` clause) has finished, which is the value the commit then obeys.
"""

from __future__ import annotations

import asyncpg

_RECORDS = "public.lf_testing_commit_settings"
_RECORD = "public.lf_testing_record_commit_setting"

_INSTALL = f"""
CREATE TABLE IF NOT EXISTS {_RECORDS} (
    xid        xid8 PRIMARY KEY,
    table_name text NOT NULL,
    setting    text NOT NULL,
    seq        bigserial NOT NULL
);
-- SECURITY DEFINER: a service's runtime role writes the watched table, not this one. No SET clause:
-- it would open a setting scope of its own (the value read here is the transaction's all the same).
CREATE OR REPLACE FUNCTION {_RECORD}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO {_RECORDS} (xid, table_name, setting)
    VALUES (pg_current_xact_id(), TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
            current_setting('synchronous_commit'))
    ON CONFLICT (xid) DO NOTHING;
    RETURN NULL;
END;
$$;
"""


class CommitSettings:
    """Records the ``synchronous_commit`` each transaction writing a watched table committed with.

    ``await CommitSettings.install(conn)`` once (as the database owner), ``await settings.watch(
    "schema.table")`` per table, then ``await settings.of("schema.table")``: the settings of the
    transactions that wrote it, oldest first ("on", "off", "local", ...)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    async def install(cls, conn: asyncpg.Connection) -> CommitSettings:
        await conn.execute(_INSTALL)
        return cls(conn)

    async def watch(self, table: str) -> None:
        """Record every transaction that inserts, updates or deletes a row of ``table``."""
        name = f"lf_testing_commit_setting_{table.replace('.', '_')}"
        await self._conn.execute(
            f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table}"
            f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_RECORD}()"
        )

    async def of(self, table: str) -> list[str]:
        rows = await self._conn.fetch(
            f"SELECT setting FROM {_RECORDS} WHERE table_name = $1 ORDER BY seq", table
        )
        return [row["setting"] for row in rows]

    async def forget(self) -> None:
        """Start afresh (e.g. after a fixture's own setup writes)."""
        await self._conn.execute(f"DELETE FROM {_RECORDS}")
