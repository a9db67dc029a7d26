"""Many rows in one statement: a projection's fold says its rows as column arrays.

A fold (``Projection.writes``) ends with N rows to insert or update; one statement per row would
be N statements in the command's composed write (and N times the SQL to parse). These build one
statement for all of them: each column travels as one typed array (``$1::uuid[]``) and ``unnest``
turns the arrays back into rows inside the server, so the statement's text and its parameter count
depend on the columns, never on how many rows there are.

Rows to update are sent sorted by their key: every writer then meets the rows it shares with
another in the same order (the planner walks a small ``unnest`` in array order to the key's index),
which is what keeps two concurrent batches from deadlocking. Table and column names are ours (code,
never input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lf_pg import Statement

Columns = Sequence[tuple[str, str]]
"""(name, PostgreSQL type) pairs, in the order of each row's values."""


def _unnest(columns: Columns, first: int = 1) -> str:
    arrays = ", ".join(f"${n}::{kind}[]" for n, (_, kind) in enumerate(columns, start=first))
    return f"unnest({arrays})"


def _arrays(columns: Columns, rows: Sequence[Sequence[Any]]) -> tuple[list[Any], ...]:
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} values for {len(columns)} columns")
    return tuple([row[n] for row in rows] for n in range(len(columns)))


def insert_rows(table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> list[Statement]:
    """``INSERT INTO table (...) SELECT * FROM unnest(...)``: one statement for every row of
    ``rows`` (none for no row)."""
    if not rows:
        return []
    names = ", ".join(name for name, _ in columns)
    sql = f"INSERT INTO {table} ({names}) SELECT * FROM {_unnest(columns)}"
    return [Statement(sql, _arrays(columns, rows))]


def update_rows(
    table: str,
    key: Columns,
    columns: Columns,
    rows: Sequence[Sequence[Any]],
    *,
    assign: Mapping[str, str] | None = None,
    extra: Columns = (),
) -> list[Statement]:
    """``UPDATE table AS t SET ... FROM unnest(...) AS r(...) WHERE t.<key> = r.<key>``: one
    statement for every row of ``rows``, each row its ``key`` values, its ``columns`` values, then
    its ``extra`` values; no two rows with the same key. A column is set to the row's value
    (``r.<column>``) unless ``assign`` gives its expression (``t.balance + r.balance``: ``t`` is the
    row as it was). ``extra`` values are not columns: ``assign``'s expressions read them (a flag)."""
    if not rows:
        return []
    assign = assign or {}
    every = [*key, *columns, *extra]
    names = ", ".join(name for name, _ in every)
    sets = ", ".join(f"{name} = {assign.get(name, f'r.{name}')}" for name, _ in columns)
    matches = " AND ".join(f"t.{name} = r.{name}" for name, _ in key)
    ordered = sorted(rows, key=lambda row: tuple(str(value) for value in row[: len(key)]))
    sql = f"UPDATE {table} AS t SET {sets} FROM {_unnest(every)} AS r({names}) WHERE {matches}"
    return [Statement(sql, _arrays(every, ordered))]
