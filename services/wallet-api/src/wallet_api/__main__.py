"""``python -m wallet_api serve | migrate | projections rebuild [NAME] | verify``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from lf_pg import DatabaseAccess, MigrationsPending
from lf_projections import rebuild
from lf_projections.verify import report, verify
from lf_web import configure_logging, run
from wallet_api.app import MIGRATIONS, SCHEMA, SERVICE, create_app
from wallet_api.projections import ALL, LEDGER
from wallet_api.settings import WalletSettings
from wallet_api.verification import VERIFIABLE


async def _migrate(settings: WalletSettings) -> None:
    applied = await DatabaseAccess.of(settings, SCHEMA).migrate(MIGRATIONS)
    print(f"{SERVICE}: {len(applied)} migration(s) applied" + "".join(f"\n  {name}" for name in applied))


async def _migrate_before_serving(settings: WalletSettings) -> bool:
    """Apply missing migrations if this login may (the owner's); a runtime-only login may not."""
    try:
        await DatabaseAccess.of(settings, SCHEMA).migrate_before_serving(MIGRATIONS)
    except MigrationsPending as refused:
        print(f"{SERVICE}: {refused}", file=sys.stderr)
        return False
    return True


async def _rebuild(settings: WalletSettings, names: list[str]) -> None:
    conn = await DatabaseAccess.of(settings, SCHEMA).connect_owner()  # swapping tables is DDL
    try:
        for name in names or list(ALL):
            followed = name == LEDGER.name
            rows = await rebuild(conn, SCHEMA, ALL[name], follower_name=name if followed else None)
            print(f"{name}: rebuilt, {rows} rows")
    finally:
        await conn.close()


async def _verify(settings: WalletSettings) -> int:
    return report(SERVICE, await verify(settings.database_url, SCHEMA, VERIFIABLE, role=settings.db_role))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wallet_api")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve", help="apply missing migrations (as the owner, if allowed), then serve HTTP and the workers"
    )
    commands.add_parser("migrate", help="apply this service's schema migrations")
    projections = commands.add_parser("projections", help="read-model maintenance")
    projections.add_argument("action", choices=["rebuild"])
    projections.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of: {', '.join(ALL)} (default: all)"
    )
    commands.add_parser("verify", help="replay the log; list where snapshots or read models differ (exit 1)")
    args = parser.parse_args(argv)
    if args.command == "projections" and (unknown := set(args.names) - set(ALL)):
        parser.error(f"unknown projection(s): {', '.join(sorted(unknown))}")

    # Production: serve exits with one line on a weak secret; operator commands need none.
    settings = WalletSettings.load(serving=args.command == "serve")
    configure_logging(settings.log_level, SERVICE)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "projections":
        asyncio.run(_rebuild(settings, args.names))
    elif args.command == "verify":
        return asyncio.run(_verify(settings))
    else:
        if not asyncio.run(_migrate_before_serving(settings)):
            return 1
        run(create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
