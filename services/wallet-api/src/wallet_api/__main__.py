"""``python -m wallet_api serve | migrate | projections rebuild [NAME] | verify`` (``lf_service``)."""

from __future__ import annotations

import sys

from lf_service import Service, service_main
from wallet_api.app import MIGRATIONS, SCHEMA, SERVICE, create_app
from wallet_api.projections import ALL
from wallet_api.settings import WalletSettings
from wallet_api.verification import VERIFIABLE

WALLET_API = Service(
    name=SERVICE,
    package="wallet_api",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    settings=WalletSettings,
    create_app=create_app,
    projections=tuple(ALL.values()),
    verifiable=VERIFIABLE,
)


def main(argv: list[str] | None = None) -> int:
    return service_main(WALLET_API, argv)


if __name__ == "__main__":
    sys.exit(main())
