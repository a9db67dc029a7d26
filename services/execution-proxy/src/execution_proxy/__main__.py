"""``python -m execution_proxy serve | migrate | projections rebuild [NAME] | verify`` (``lf_service``)."""

from __future__ import annotations

import sys

from execution_proxy.app import MIGRATIONS, SCHEMA, SERVICE, create_app
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.projections import ALL
from execution_proxy.settings import ExecutionSettings
from execution_proxy.verification import VERIFIABLE
from lf_service import Service, service_main, service_pool


async def _seed(settings: ExecutionSettings) -> None:
    if not settings.seed_catalogue:
        return
    async with service_pool(settings, SCHEMA) as pool:
        defined = await CatalogueAdmin(pool, credits_per_usd=settings.credits_per_usd).seed()
    if defined:
        print(f"{SERVICE}: seeded the development catalogue ({defined} models)")


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
)


def main(argv: list[str] | None = None) -> int:
    return service_main(EXECUTION_PROXY, argv)


if __name__ == "__main__":
    sys.exit(main())
