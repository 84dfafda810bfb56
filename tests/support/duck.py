"""Rows into a DuckDB table for the tests, fast.

DuckDB's `executemany` runs one INSERT per row, about 0.9 ms of CPU each (2,400 rows: 2.2
CPU-s); one INSERT of many `VALUES` rows binds the same Python values, and DuckDB casts them to
the table's column types as it does for `executemany`'s (the same table, compared row by row:
tests/unit/test_support_duck.py), in about a fifteenth of the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

ROWS_PER_INSERT = 250  # a few thousand parameters a statement


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """`INSERT INTO table VALUES (?, …)` for every row of `rows` (all of one width)."""
    if not rows:
        return
    width = len(rows[0])
    assert all(len(row) == width for row in rows), "rows of different widths"
    mark = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), ROWS_PER_INSERT):
        part = rows[start : start + ROWS_PER_INSERT]
        values = ", ".join([mark] * len(part))
        con.execute(f"INSERT INTO {table} VALUES {values}", [v for row in part for v in row])
