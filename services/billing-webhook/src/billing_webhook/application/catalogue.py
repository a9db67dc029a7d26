"""The credit-pack catalogue: defined and changed through internal routes, seeded for development."""

from __future__ import annotations

from typing import Any

import asyncpg

from billing_webhook.application import queries
from billing_webhook.application.use_cases import UseCases
from billing_webhook.domain.credit_pack import CreditPack, PackTerms
from lf_eventstore import AggregateRepository

REPOSITORY = AggregateRepository(CreditPack, "credit-pack")

# Dev packs (test mode): what a fresh development catalogue sells. 1 credit = $0.01, with a bonus
# on the larger packs.
DEV_PACKS: dict[str, PackTerms] = {
    "dev-100": PackTerms("dev-credits", "100 credits", 100, 100, test_mode=True),
    "dev-550": PackTerms("dev-credits", "550 credits", 500, 550, test_mode=True),
    "dev-1200": PackTerms("dev-credits", "1200 credits", 1000, 1200, test_mode=True),
}


class CreditPacks(UseCases):
    async def put(self, variant_id: str, terms: PackTerms, *, metadata: dict[str, Any]) -> bool:
        """Define or change a pack; returns whether anything changed."""

        async def decide(conn: asyncpg.Connection, pack: CreditPack) -> bool:
            return pack.put(variant_id, terms, at=self.clock())

        return await self.commands.run(REPOSITORY, variant_id, decide, metadata=metadata)

    async def seed(self, packs: dict[str, PackTerms] = DEV_PACKS) -> list[str]:
        """Define ``packs`` if the catalogue is empty; returns the variants defined now. Replicas
        starting together may both try: the stream lock makes each pack defined once."""
        async with self.commands.connection() as conn:
            if not await queries.catalogue_is_empty(conn):
                return []
        metadata = {"actor": "billing:seed"}
        return [
            variant for variant, terms in packs.items() if await self.put(variant, terms, metadata=metadata)
        ]
