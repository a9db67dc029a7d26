"""``python -m lightning_jobs serve | migrate | projections rebuild [NAME] | verify`` (``lf_service``)."""

from __future__ import annotations

import sys

from lf_service import Service, service_main
from lightning_jobs.app import MIGRATIONS, SCHEMA, SERVICE, create_app
from lightning_jobs.projections import ALL
from lightning_jobs.settings import LightningSettings
from lightning_jobs.verification import VERIFIABLE

LIGHTNING_JOBS = Service(
    name=SERVICE,
    package="lightning_jobs",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    settings=LightningSettings,
    create_app=create_app,
    projections=tuple(ALL.values()),
    verifiable=VERIFIABLE,
)


def main(argv: list[str] | None = None) -> int:
    return service_main(LIGHTNING_JOBS, argv)


if __name__ == "__main__":
    sys.exit(main())
