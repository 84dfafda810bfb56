"""tests/support/duck.py: `insert_rows` leaves the table `executemany` leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from support.duck import ROWS_PER_INSERT, insert_rows

COLUMNS = "n BIGINT, t TIMESTAMPTZ, u VARCHAR, x DOUBLE, s UTINYINT, c VARCHAR"


def _table(rows: list[tuple[Any, ...]], *, many: bool) -> list[tuple[Any, ...]]:
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TABLE r ({COLUMNS})")
        if many:
            con.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?)", rows)
        else:
            insert_rows(con, "r", rows)
        return list(con.execute("SELECT * FROM r ORDER BY n").fetchall())
    finally:
        con.close()


def test_insert_rows_gives_the_table_executemany_gives() -> None:
    t0 = datetime(2026, 1, 3, 10, 0, tzinfo=UTC)
    # more rows than one statement takes; ints and floats in one DOUBLE column, NULLs,
    # a naive and an aware timestamp, numbers and text for a VARCHAR column
    rows: list[tuple[Any, ...]] = [
        (
            n,
            (t0 + timedelta(minutes=n)) if n % 7 else t0.replace(tzinfo=None),
            f"u{n % 5}" if n % 11 else None,
            (n if n % 2 else n + 0.25) if n % 13 else None,
            n % 4,
            "" if n % 3 else "38.47",
        )
        for n in range(ROWS_PER_INSERT * 2 + 3)
    ]
    assert _table(rows, many=False) == _table(rows, many=True)
    assert _table([], many=False) == []
