"""PostgreSQL plumbing shared by every service: one pool per service schema, and migrations."""

from lf_pg.migrations import MigrationSet, migrate
from lf_pg.pool import create_pool, jsonb

__all__ = ["MigrationSet", "create_pool", "jsonb", "migrate"]
