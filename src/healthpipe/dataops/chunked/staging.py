"""The staging view over one or more chunks' staging Parquet files, numbered as in the
whole file, under the names the single path's SQL reads (`validation.staged.STAGED`)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import source_literal
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation.common import INSTANT, KEY, REASONS, ROW, output_columns
from healthpipe.dataops.validation.staged import (
    STAGED,
    STAGED_INSTANT,
    STAGED_INSTANT_NAME,
    staged_name,
)
from healthpipe.domain.validation_sql import parsed_time_sql, quote_ident


def create_staged_view(
    con: duckdb.DuckDBPyConnection, header: Header, parts: list[tuple[Path, int]]
) -> None:
    """The view STAGED over `parts` (staging file, parsed records before it in the file),
    in order: ROW is the record's number among the file's parsed records."""
    columns = output_columns(header)
    named = ", ".join(f"{staged_name(i)} AS {quote_ident(c)}" for i, c in enumerate(columns))

    def select(path: Path, before: int) -> str:
        cells = f"SELECT file_row_number + {int(before) + 1} AS {ROW}, {named}, {REASONS}, {KEY}"
        source = f"read_parquet({source_literal(path)}, file_row_number = true)"
        if _holds_instant(con, path):
            return f"{cells}, {STAGED_INSTANT} AS {INSTANT} FROM {source}"
        return f"SELECT *, {parsed_time_sql()} AS {INSTANT} FROM ({cells} FROM {source})"

    selects = " UNION ALL ".join(select(path, before) for path, before in parts)
    con.execute(f"CREATE VIEW {STAGED} AS {selects}")


def _holds_instant(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Whether the staging file keeps the parsed event time. One written before it did (a
    chunk mapped by the code before a deploy, its execution still running) has the text
    only, which is parsed again, as then."""
    found = con.execute(
        f"SELECT count(*) FROM parquet_schema({source_literal(path)}) WHERE name = ?",
        [STAGED_INSTANT_NAME],
    ).fetchone()
    return bool(found and found[0])
