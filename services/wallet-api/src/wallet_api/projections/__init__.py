"""The wallet's read models. ``INLINE`` run in each command's transaction; ``LEDGER`` follows the log."""

from lf_projections import Projection
from wallet_api.projections import balances, deposits, ledger, reservations

INLINE: tuple[Projection, ...] = (balances.PROJECTION, reservations.PROJECTION, deposits.PROJECTION)
LEDGER: Projection = ledger.PROJECTION
ALL: dict[str, Projection] = {p.name: p for p in (*INLINE, LEDGER)}
