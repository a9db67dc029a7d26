"""billing-webhook's credit packs feed the read model behind GET /wallet/products."""

from __future__ import annotations

import asyncpg

from lf_contracts.events import CreditPackChangedV1
from lf_messaging import MessageContext
from wallet_api.application.use_cases import Wallets
from wallet_api.projections import credit_packs


async def on_credit_pack_changed(
    conn: asyncpg.Connection, event: CreditPackChangedV1, context: MessageContext, *, wallets: Wallets
) -> None:
    await credit_packs.pack_changed(conn, event)
