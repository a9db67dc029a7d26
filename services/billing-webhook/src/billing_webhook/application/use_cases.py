"""The base of billing's use cases: ``lf_eventstore.UseCases`` whose commands apply billing's inline
projections. On the pool a command is a transaction of its own; bound to a connection (``on(conn)``)
it is a savepoint of the caller's transaction, or, ``on(conn, savepoints=False)`` as the delivery
processor binds them, plain statements of it: a delivery's effects commit with its
``DeliveryProcessed`` or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

import lf_eventstore
from billing_webhook.projections import INLINE
from lf_eventstore import CommandRunner, utc_now


class UseCases(lf_eventstore.UseCases):
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime] = utc_now,
        *,
        appended: Callable[[], None] | None = None,
    ) -> None:
        """``appended``: the process's ``Wakeup.appended``, called after each command commits."""
        super().__init__(CommandRunner(pool, INLINE, clock, appended=appended))
