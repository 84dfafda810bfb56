"""The top findings list sorts only the rows at or above the severity its last row can have."""

from __future__ import annotations

import duckdb
import pytest

from healthpipe.dataops.analysis.summaries import top_severity_floor
from support.duck import insert_rows


def _counts(rows: list[tuple[int, int]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE finding_counts (severity UTINYINT, n BIGINT)")
    if rows:
        insert_rows(con, "finding_counts", rows)
    return con


@pytest.mark.parametrize(
    ("rows", "top", "floor"),
    [
        ([(3, 50), (2, 10), (1, 10)], 50, 3),  # exactly enough high findings
        ([(3, 49), (2, 10), (1, 10)], 50, 2),  # one short: the medium ones can be listed
        ([(3, 20), (3, 30), (2, 10)], 50, 3),  # counts of one severity add up
        ([(3, 1), (2, 1), (1, 1)], 50, 0),  # fewer findings than the list: no floor
        ([], 50, 0),
    ],
)
def testtop_severity_floor(rows: list[tuple[int, int]], top: int, floor: int) -> None:
    assert top_severity_floor(_counts(rows), top) == floor
