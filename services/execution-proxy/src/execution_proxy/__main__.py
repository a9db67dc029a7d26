"""``python -m execution_proxy serve | migrate | projections rebuild [NAME] | verify`` (``lf_service``),
and ``keys rewrap``: after rotating ``BYOK_MASTER_KEY`` (the old one moved to
``BYOK_PREVIOUS_MASTER_KEYS``), wrap every stored key's data key with the new master; exit 1 while
some key is still under a master key that is not configured."""

from __future__ import annotations

import argparse
import sys

from execution_proxy.app import MIGRATIONS, SCHEMA, SERVICE, create_app, master_keys
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.application.keys import ByokKeys
from execution_proxy.projections import ALL
from execution_proxy.settings import ExecutionSettings
from execution_proxy.verification import VERIFIABLE
from lf_service import Command, Service, service_main, service_pool


async def _seed(settings: ExecutionSettings) -> None:
    if not settings.seed_catalogue:
        return
    async with service_pool(settings, SCHEMA) as pool:
        defined = await CatalogueAdmin(pool, credits_per_usd=settings.credits_per_usd).seed()
    if defined:
        print(f"{SERVICE}: seeded the development catalogue ({defined} models)")


def _configure_keys(keys: argparse.ArgumentParser) -> None:
    action = keys.add_subparsers(dest="action", required=True)
    action.add_parser("rewrap", help="wrap every stored BYOK key's data key with the current master key")


async def _keys(settings: ExecutionSettings, args: argparse.Namespace) -> int:
    async with service_pool(settings, SCHEMA) as pool:
        keys = ByokKeys(pool, master_keys(settings))
        rewrapped = await keys.rewrap()
        left = await keys.under_other_masters()
    current = keys.master_keys.current.key_id
    print(f"{SERVICE}: {rewrapped} key(s) re-wrapped under master key {current}")
    if left:
        print(f"{SERVICE}: {left} key(s) under a master key not configured (see the log)", file=sys.stderr)
        return 1
    return 0


EXECUTION_PROXY = Service(
    name=SERVICE,
    package="execution_proxy",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    settings=ExecutionSettings,
    create_app=create_app,
    projections=tuple(ALL.values()),
    verifiable=VERIFIABLE,
    before_serving=_seed,  # the dev catalogue, if SEED_CATALOGUE and it is empty
    commands=(
        Command(
            "keys",
            "BYOK key maintenance: rewrap after rotating BYOK_MASTER_KEY",
            configure=_configure_keys,
            run=_keys,
            serving=True,  # it needs the master keys, which only serving settings check
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    return service_main(EXECUTION_PROXY, argv)


if __name__ == "__main__":
    sys.exit(main())
