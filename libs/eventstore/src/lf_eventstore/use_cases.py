"""The base of every service's use cases (``application/use_cases.py``): a bundle of commands that
runs on the pool, or ``on(conn)`` inside a caller's transaction (a message consumer, the delivery
processor), whose inbox row or checkpoint then commits together with the command's effects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Self

import asyncpg

from lf_eventstore.commands import CommandRunner


class UseCases:
    def __init__(self, commands: CommandRunner) -> None:
        self.commands = commands

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.commands.clock

    def on(self, conn: asyncpg.Connection, *, savepoints: bool = True) -> Self:
        """The same use cases, their commands savepoints of the transaction open on ``conn`` (or,
        ``savepoints=False``, plain statements of it: see ``CommandRunner``)."""
        bound = copy.copy(self)
        bound.commands = self.commands.on(conn, savepoints=savepoints)
        return bound
