"""PostgreSQL plumbing shared by every service: one pool per service schema, migrations, and the
owner and runtime roles each service reaches its schema with."""

from lf_pg.access import DatabaseAccess, MigrationsPending
from lf_pg.durability import WITHOUT_FLUSH
from lf_pg.migrations import MigrationSet, migrate, shadow_schema
from lf_pg.pool import create_pool, jsonb
from lf_pg.statements import Statement, compose, execute_all

__all__ = [
    "WITHOUT_FLUSH",
    "DatabaseAccess",
    "MigrationSet",
    "MigrationsPending",
    "Statement",
    "compose",
    "create_pool",
    "execute_all",
    "jsonb",
    "migrate",
    "shadow_schema",
]
