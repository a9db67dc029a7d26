"""``python -m <pkg> serve | migrate | projections rebuild [NAME] | verify``, the same in every service.

A service describes itself once (``Service``: its name, schema, migrations, settings, app factory,
projections and what ``verify`` checks) and its ``__main__`` is ``sys.exit(service_main(SERVICE))``.
What only one service has (billing's ``deliveries ...``) comes in as a ``Command``.

- ``serve`` loads the settings with their secrets checked (production refuses weak ones in one
  line), applies missing migrations if its login may (the owner's; compose runs ``migrate`` as a
  one-shot before it and serves as the runtime role, which may not), runs ``before_serving``, then
  serves until SIGTERM.
- ``migrate``, ``projections rebuild`` and ``verify`` are operator commands: they need no secrets,
  migrate and rebuild as the schema's owner, and a rebuild treats each projection as what it
  declares itself (``Projection(followed=True)`` hands its runner the checkpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lf_pg import DatabaseAccess, MigrationSet, MigrationsPending
from lf_projections import Projection, rebuild
from lf_projections.verify import Verifiable, report, verify
from lf_web import ServiceSettings, configure_logging, run


@dataclass(frozen=True)
class Command:
    """A subcommand of one service's own: ``configure`` adds its arguments, ``run`` does it and
    returns the exit status. ``check`` returns a usage error (exit 2) before any settings load;
    ``serving=True`` when it needs the serving secrets (one that signs with them)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any, argparse.Namespace], Awaitable[int]]
    check: Callable[[argparse.Namespace], str | None] = lambda args: None
    serving: bool = False


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    schema: str
    migrations: list[MigrationSet]
    settings: type[ServiceSettings]
    create_app: Callable[[Any], web.Application]
    projections: Sequence[Projection]
    verifiable: Verifiable
    before_serving: Callable[[Any], Awaitable[None]] | None = None
    """After migrating, before serving (billing seeds its dev catalogue if asked to)."""
    commands: Sequence[Command] = field(default=())

    @property
    def projections_by_name(self) -> dict[str, Projection]:
        return {projection.name: projection for projection in self.projections}


def service_main(service: Service, argv: list[str] | None = None) -> int:
    parser = _parser(service)
    args = parser.parse_args(argv)
    own = {command.name: command for command in service.commands}
    if args.command == "projections" and (unknown := set(args.names) - set(service.projections_by_name)):
        parser.error(f"unknown projection(s): {', '.join(sorted(unknown))}")
    if args.command in own and (usage := own[args.command].check(args)):
        parser.error(usage)

    serving = args.command == "serve" or (args.command in own and own[args.command].serving)
    settings = service.settings.load(serving=serving)
    configure_logging(settings.log_level, service.name)
    if args.command == "migrate":
        asyncio.run(_migrate(service, settings))
    elif args.command == "projections":
        asyncio.run(_rebuild(service, settings, args.names))
    elif args.command == "verify":
        return asyncio.run(_verify(service, settings))
    elif args.command in own:
        return asyncio.run(own[args.command].run(settings, args))
    else:
        if not asyncio.run(_migrate_before_serving(service, settings)):
            return 1
        if service.before_serving is not None:
            asyncio.run(service.before_serving(settings))
        run(service.create_app(settings), settings)
    return 0


def _parser(service: Service) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {service.package}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve", help="apply missing migrations (as the owner, if allowed), then serve HTTP and the workers"
    )
    commands.add_parser("migrate", help="apply this service's schema migrations")
    projections = commands.add_parser("projections", help="read-model maintenance")
    projections.add_argument("action", choices=["rebuild"])
    projections.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of: {', '.join(service.projections_by_name)} (default: all)",
    )
    commands.add_parser("verify", help="replay the log; list where snapshots or read models differ (exit 1)")
    for command in service.commands:
        command.configure(commands.add_parser(command.name, help=command.help))
    return parser


async def _migrate(service: Service, settings: ServiceSettings) -> None:
    applied = await DatabaseAccess.of(settings, service.schema).migrate(service.migrations)
    print(f"{service.name}: {len(applied)} migration(s) applied" + "".join(f"\n  {n}" for n in applied))


async def _migrate_before_serving(service: Service, settings: ServiceSettings) -> bool:
    """Apply missing migrations if this login may (the owner's); a runtime-only login may not."""
    try:
        await DatabaseAccess.of(settings, service.schema).migrate_before_serving(service.migrations)
    except MigrationsPending as refused:
        print(f"{service.name}: {refused}", file=sys.stderr)
        return False
    return True


async def _rebuild(service: Service, settings: ServiceSettings, names: list[str]) -> None:
    conn = await DatabaseAccess.of(settings, service.schema).connect_owner()  # swapping tables is DDL
    try:
        for name in names or list(service.projections_by_name):
            projection = service.projections_by_name[name]
            rows = await rebuild(conn, service.schema, projection, follower_name=projection.follower_name)
            print(f"{projection.name}: rebuilt, {rows} rows")
    finally:
        await conn.close()


async def _verify(service: Service, settings: ServiceSettings) -> int:
    findings = await verify(settings.database_url, service.schema, service.verifiable, role=settings.db_role)
    return report(service.name, findings)
