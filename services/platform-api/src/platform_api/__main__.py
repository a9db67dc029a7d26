"""``python -m platform_api serve | migrate | projections rebuild [NAME] | verify`` (``lf_service``)."""

from __future__ import annotations

import sys

from lf_service import Service, service_main
from platform_api.app import MIGRATIONS, SCHEMA, SERVICE, create_app
from platform_api.projections import ALL
from platform_api.settings import PlatformSettings
from platform_api.verification import VERIFIABLE

PLATFORM_API = Service(
    name=SERVICE,
    package="platform_api",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    settings=PlatformSettings,
    create_app=create_app,
    projections=tuple(ALL.values()),
    verifiable=VERIFIABLE,
)


def main(argv: list[str] | None = None) -> int:
    return service_main(PLATFORM_API, argv)


if __name__ == "__main__":
    sys.exit(main())
