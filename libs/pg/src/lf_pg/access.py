"""How a service reaches its schema: as its runtime role to serve, as the schema's owner to change it.

From the settings every service shares:

- ``DATABASE_URL`` (+ ``DB_ROLE``, a role to ``SET ROLE`` to after login): what ``serve`` uses. In
  compose the URL's user is the runtime role itself; under ``make dev`` and in tests a superuser
  login switches to it.
- ``MIGRATE_DATABASE_URL`` (default: ``DATABASE_URL``) + ``DB_OWNER_ROLE``: what ``migrate`` and
  ``projections rebuild`` use. In compose a one-shot ``migrate`` logs in as the owner; under
  ``make dev`` the superuser login switches to ``DB_OWNER_ROLE``.

Neither owner setting given: one role (``DB_ROLE``, or the login) owns and runs, as before the split.
``serve`` applies missing migrations only when there are some, and only through the owner login: a
runtime role that cannot apply them gets one clear line instead of serving a schema it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from lf_pg.migrations import MigrationSet, applied_migrations, migrate, missing
from lf_pg.pool import connect


class MigrationsPending(Exception):
    """``serve`` found migrations missing and its login may not apply them."""


@dataclass(frozen=True)
class DatabaseAccess:
    url: str
    schema: str
    role: str | None = None
    owner_url: str | None = None
    owner_role: str | None = None

    @classmethod
    def of(cls, settings: Any, schema: str) -> DatabaseAccess:
        """From a service's settings (``lf_web.ServiceSettings`` or a subclass)."""
        return cls(
            settings.database_url,
            schema,
            settings.db_role,
            settings.migrate_database_url,
            settings.db_owner_role,
        )

    @property
    def split(self) -> bool:
        return self.owner_url is not None or self.owner_role is not None

    def _user(self, url: str, setting: str) -> str:
        user = urlsplit(url).username
        if not user:
            raise ValueError(f"cannot tell the role of {setting} (no user in the URL): set it explicitly")
        return user

    @property
    def runtime(self) -> str | None:
        """The role the service serves as (None: the login, whoever it is)."""
        if self.role or not self.split:
            return self.role
        return self._user(self.url, "DB_ROLE")

    @property
    def owner(self) -> str | None:
        """The role that owns the schema (None: the runtime role owns it, one role)."""
        if not self.split:
            return None
        return self.owner_role or self._user(self.owner_url or self.url, "DB_OWNER_ROLE")

    async def migrate(self, sets: list[MigrationSet]) -> list[str]:
        return await migrate(
            self.owner_url or self.url, self.schema, sets, role=self.runtime, owner=self.owner
        )

    async def connect_owner(self) -> asyncpg.Connection:
        """A connection that may change the schema (rebuilds swap tables)."""
        return await connect(self.owner_url or self.url, self.schema, role=self.owner or self.role)

    async def pending(self, sets: list[MigrationSet]) -> list[str]:
        """Migrations not applied yet, as the runtime role sees them."""
        try:
            conn = await connect(self.url, self.schema, role=self.role)
        except asyncpg.InvalidParameterValueError:  # DB_ROLE does not exist yet: a fresh database
            done: set[str] = set()
        else:
            try:
                done = await applied_migrations(conn)
            except asyncpg.InsufficientPrivilegeError:
                done = set()
            finally:
                await conn.close()
        return [name for name, _ in missing(sets, done)]

    async def migrate_before_serving(self, sets: list[MigrationSet]) -> list[str]:
        """Apply what is missing, if anything; ``MigrationsPending`` when this login may not."""
        pending = await self.pending(sets)
        if not pending:
            return []
        try:
            return await self.migrate(sets)
        except asyncpg.InsufficientPrivilegeError as error:
            raise MigrationsPending(
                f"{len(pending)} migration(s) of schema {self.schema} missing ({', '.join(pending)}) and"
                f" this login may not apply them ({error}): run `migrate` as the schema's owner"
                " (MIGRATE_DATABASE_URL or DB_OWNER_ROLE)"
            ) from error
