"""Several writes in one round trip: statements as data, composed into one statement of CTEs.

A command's append and its inline projections' writes are separate statements; sent one by one they
cost a client/server round trip each. ``compose`` turns them into one statement: each becomes a
data-modifying CTE (PostgreSQL runs every one of them exactly once, whether or not the final query
reads it), its ``$n`` parameters renumbered after the previous ones'. A statement may read an
earlier one's ``RETURNING`` rows by that statement's ``name`` (how the append's insert joins the
stream head it moved); PostgreSQL allows data-modifying CTEs only at the top level, so a statement
of its own never starts with ``WITH``.

All the CTEs see the same snapshot and none sees another's changes, so statements composed together
must not touch the same row twice (fold first: one UPDATE per row with the summed effect) and must
not read what another writes except through its ``RETURNING``. The SQL is ours (code, never input)
and never holds a literal ``$``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_PARAMETER = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement and its arguments (``$1`` is ``args[0]``); ``name`` is how a later statement
    composed with it reads its ``RETURNING`` rows."""

    sql: str
    args: tuple[Any, ...] = ()
    name: str | None = None


def compose(statements: Sequence[Statement], *, answer: str | None = None) -> Statement:
    """One statement running every statement of ``statements`` in order, as CTEs. It answers the
    ``RETURNING`` rows of the statement named ``answer``, else nothing."""
    if not statements:
        raise ValueError("nothing to compose")
    parts: list[str] = []
    args: list[Any] = []
    for n, statement in enumerate(statements):
        offset = len(args)
        sql = _PARAMETER.sub(lambda m, offset=offset: f"${int(m.group(1)) + offset}", statement.sql)
        parts.append(f"{statement.name or f'w{n}'} AS ({sql})")
        args.extend(statement.args)
    final = f"SELECT * FROM {answer}" if answer else "SELECT NULL"
    return Statement(f"WITH {', '.join(parts)} {final}", tuple(args))


async def execute_all(conn: Any, statements: Sequence[Statement]) -> None:
    """Run ``statements`` (no two touching the same row) in one round trip; one alone as it is."""
    if len(statements) == 1:
        await conn.execute(statements[0].sql, *statements[0].args)
    elif statements:
        composed = compose(statements)
        await conn.execute(composed.sql, *composed.args)
