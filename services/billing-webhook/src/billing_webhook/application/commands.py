"""The base of billing's use cases. Each command runs as ``lf_eventstore.CommandRunner`` runs every
command: lock the aggregate's stream row, load it, let the domain decide, append what it recorded and
apply billing's inline projections, in one transaction. On the pool that is a transaction of its
own; bound to a connection (``on(conn)``, as the delivery processor does) it is a savepoint of the
caller's transaction, so a delivery's effects commit with the processor's checkpoint or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Self

import asyncpg

from billing_webhook.projections import INLINE
from lf_eventstore import CommandRunner, utc_now


class UseCases:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime] = utc_now,
        *,
        commands: CommandRunner | None = None,
    ) -> None:
        self.commands = commands or CommandRunner(pool, INLINE, clock)

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.commands.clock

    def on(self, conn: asyncpg.Connection) -> Self:
        return type(self)(self.commands.pool, commands=self.commands.on(conn))
