"""The staging view over one or more chunks' staging Parquet files, numbered as in the
whole file, under the names the single path's SQL reads (`validation.staged.STAGED`)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import source_literal
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation.common import INSTANT, KEY, REASONS, ROW, output_columns
from healthpipe.dataops.validation.staged import STAGED, STAGED_INSTANT, _staged_name
from healthpipe.domain.validation_sql import quote_ident


def create_staged_view(
    con: duckdb.DuckDBPyConnection, header: Header, parts: list[tuple[Path, int]]
) -> None:
    """The view STAGED over `parts` (staging file, parsed records before it in the file),
    in order: ROW is the record's number among the file's parsed records."""
    columns = output_columns(header)
    named = ", ".join(f"{_staged_name(i)} AS {quote_ident(c)}" for i, c in enumerate(columns))
    selects = " UNION ALL ".join(
        f"SELECT file_row_number + {int(before) + 1} AS {ROW}, {named}, {REASONS}, {KEY}, "
        f"{STAGED_INSTANT} AS {INSTANT} "
        f"FROM read_parquet({source_literal(path)}, file_row_number = true)"
        for path, before in parts
    )
    con.execute(f"CREATE VIEW {STAGED} AS {selects}")
