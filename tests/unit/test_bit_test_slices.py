"""The repeat bit test holds its rows in bitstrings of at most BIT_SLICE_ROWS bits.

DuckDB copies a variable's value into every vector that reads it, so one bitstring over the
whole file made each test O(rows²) (0.26 CPU-s per test at 10M rows, 0.81 at 20M); slices
keep it linear. The test must stay exact at the slice edges and false (never NULL) for rows
outside the slices, empty slices included.
"""

from __future__ import annotations

import duckdb
import pytest

from healthpipe.dataops.validation import staged
from healthpipe.dataops.validation.common import ROW
from healthpipe.dataops.validation.staged import CONFLICT
from support.duck import insert_rows

SLICE = 1000
REPEATS = [(1, False), (999, True), (1000, False), (1001, True), (3007, False), (4000, True)]


@pytest.fixture
def con(monkeypatch: pytest.MonkeyPatch) -> duckdb.DuckDBPyConnection:
    monkeypatch.setattr(staged, "BIT_SLICE_ROWS", SLICE)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE repeats ({ROW} BIGINT, {CONFLICT} BOOLEAN)")
    insert_rows(con, "repeats", REPEATS)
    return con


def _rows_where(con: duckdb.DuckDBPyConnection, test: str) -> tuple[list[int], int]:
    rows = f"(SELECT i AS {ROW} FROM range(-5, 5 * {SLICE}) r(i))"
    query = f"SELECT {ROW} FROM {rows} WHERE {test} ORDER BY 1"
    hits = [r for (r,) in con.execute(query).fetchall()]
    (nulls,) = con.execute(f"SELECT count(*) FROM {rows} WHERE ({test}) IS NULL").fetchone() or (1,)
    return hits, nulls


def test_the_bit_test_is_exact_across_slices_and_each_slice_is_bounded(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # GIVEN repeats at both edges of slices, and a slice (rows 2001-3000) with none
    # WHEN the tests of every repeat and of the conflicting ones are built
    repeat = staged.bit_test(con, "hp_excluded", "true")
    conflict = staged.bit_test(con, "hp_conflicts", CONFLICT)
    # THEN each is true on exactly its rows, never NULL
    assert _rows_where(con, repeat) == ([r for r, _ in REPEATS], 0)
    assert _rows_where(con, conflict) == ([r for r, c in REPEATS if c], 0)
    # AND no bitstring is longer than a slice
    variables = con.execute(
        "SELECT name, bit_length(value::BITSTRING) FROM duckdb_variables()"
    ).fetchall()
    assert variables
    assert all(bits <= SLICE for _, bits in variables)


def test_no_repeats_make_a_constant_false(con: duckdb.DuckDBPyConnection) -> None:
    assert staged.bit_test(con, "hp_none", f"{ROW} < 0") == "false"
