"""``insert_rows`` / ``update_rows``: many rows as one statement of typed column arrays, whose text
does not grow with the rows, and which writes what a statement per row would."""

from __future__ import annotations

from uuid import UUID

import pytest

from lf_pg import compose
from lf_projections.rows import insert_rows, update_rows

A = UUID("00000000-0000-0000-0000-00000000000a")
B = UUID("00000000-0000-0000-0000-00000000000b")
C = UUID("00000000-0000-0000-0000-00000000000c")
COLUMNS = [("id", "uuid"), ("n", "bigint"), ("label", "text")]


def test_insert_rows_is_one_statement_of_one_typed_array_per_column():
    [statement] = insert_rows("things", COLUMNS, [(A, 1, "a"), (B, 2, None)])
    assert statement.sql == (
        "INSERT INTO things (id, n, label) SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[])"
    )
    assert statement.args == ([A, B], [1, 2], ["a", None])


def test_the_statement_is_the_same_for_one_row_or_many():
    one = insert_rows("things", COLUMNS, [(A, 1, "a")])[0].sql
    many = insert_rows("things", COLUMNS, [(A, 1, "a"), (B, 2, "b"), (C, 3, "c")])[0].sql
    assert one == many


def test_no_rows_is_no_statement():
    assert insert_rows("things", COLUMNS, []) == []
    assert update_rows("things", COLUMNS[:1], COLUMNS[1:], []) == []


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError):
        insert_rows("things", COLUMNS, [(A, 1)])


def test_update_rows_joins_the_arrays_on_the_key_and_sends_rows_in_key_order():
    [statement] = update_rows(
        "things",
        [("id", "uuid")],
        [("n", "bigint"), ("label", "text")],
        [(C, 3, "c", True), (A, 1, "a", False), (B, 2, "b", True)],
        assign={"n": "t.n + r.n", "label": "CASE WHEN r.relabel THEN r.label ELSE t.label END"},
        extra=[("relabel", "boolean")],
    )
    assert statement.sql == (
        "UPDATE things AS t SET n = t.n + r.n, label = CASE WHEN r.relabel THEN r.label ELSE t.label END"
        " FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::boolean[]) AS r(id, n, label, relabel)"
        " WHERE t.id = r.id"
    )
    # Sorted by key: two writers sharing rows lock them in the same order.
    assert statement.args == ([A, B, C], [1, 2, 3], ["a", "b", "c"], [False, True, True])


async def test_they_write_the_rows_for_real_and_compose_with_each_other(tally_pool):
    await tally_pool.execute("CREATE TABLE things (id uuid PRIMARY KEY, n bigint NOT NULL, label text)")
    await tally_pool.execute("INSERT INTO things VALUES ($1, 10, 'old')", A)
    inserted = insert_rows("things", COLUMNS, [(B, 2, "b"), (C, 3, None)])
    updated = update_rows(
        "things",
        [("id", "uuid")],
        [("n", "bigint"), ("label", "text")],
        [(A, 5, "ignored")],
        assign={"n": "t.n + r.n", "label": "t.label"},
    )
    write = compose([*inserted, *updated])
    await tally_pool.execute(write.sql, *write.args)
    rows = await tally_pool.fetch("SELECT id, n, label FROM things ORDER BY id")
    assert [tuple(row) for row in rows] == [(A, 15, "old"), (B, 2, "b"), (C, 3, None)]
