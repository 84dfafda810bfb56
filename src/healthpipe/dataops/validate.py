"""Validates a vitals CSV with DuckDB and splits it into processed and rejected outputs.

Malformed records are captured by DuckDB's reject tables, never dropped; every rule is
evaluated per row; every input record ends in exactly one of the two outputs, which keep
the file's order. Files without malformed records take the streaming path
(`validate_stream`); the others are numbered through a table, here.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header
from healthpipe.dataops.split_sql import (
    INSTANT,
    MALFORMED_REASON,
    SplitPaths,
    ValidationResult,
    check_reserved,
    duckdb_reason,
    load_malformed,
    numbered_scan_sql,
    output_columns,
    processed_csv_cells,
    processed_parquet_cells,
    rejected_cells,
    rejected_nulls,
    summarise,
)
from healthpipe.dataops.validate_stream import validate_streaming
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import (
    DUPLICATE_REASON,
    duplicate_candidate_sql,
    duplicate_key_columns,
    quote_ident,
    quote_literal,
    reasons_list_sql,
    safe_cell_sql,
)
from healthpipe.errors import InputError

__all__ = ["MALFORMED_REASON", "SplitPaths", "ValidationResult", "validate_file"]


def _load(
    con: duckdb.DuckDBPyConnection, path: Path, header: Header, profile: RuleProfile, now: str
) -> int:
    """Parse the file once into `checked`, each row with its per-row reasons; malformed
    records land in `malformed` with their number. Returns the malformed count."""
    cols = ", ".join(quote_ident(c) for c in header.canonical)
    try:
        con.execute(
            f"CREATE TEMP TABLE checked AS SELECT parsed_no, parsed_no AS source_row, {cols}, "
            f"{INSTANT}, {reasons_list_sql(profile, now, INSTANT)} AS reasons "
            f"FROM {numbered_scan_sql(path, header, prepared=True)}"
        )
    except duckdb.Error as exc:
        raise InputError(f"not a readable CSV file: {duckdb_reason(exc)}", code="not_csv") from exc
    return load_malformed(con)


def _number_rows(con: duckdb.DuckDBPyConnection) -> None:
    """source_row: the 1-based data-record index, counting malformed records too.

    Rows keep their file order in `checked` (updates never move rows), so the outputs need
    no sort.
    """
    # The k-th parsed record sits at k + #{malformed j : m_j - j < k}.
    con.execute(
        "CREATE TEMP TABLE gaps AS SELECT before_no, max(skipped) AS skipped FROM ("
        "SELECT source_row - row_number() OVER (ORDER BY source_row) AS before_no, "
        "row_number() OVER (ORDER BY source_row) AS skipped FROM malformed) GROUP BY before_no"
    )
    con.execute(
        "UPDATE checked SET source_row = checked.parsed_no + g.skipped FROM ("
        "SELECT p.parsed_no, g.skipped FROM (SELECT parsed_no FROM checked) p "
        "ASOF JOIN gaps g ON p.parsed_no > g.before_no) g WHERE checked.parsed_no = g.parsed_no"
    )


def _mark_duplicates(con: duckdb.DuckDBPyConnection, profile: RuleProfile) -> None:
    """Append `duplicate_reading` to every repeat of an earlier (user, instant) reading.

    A hash pass finds the few keys seen more than once; only those rows are compared
    exactly and ranked, so no window or sort runs over the whole file.
    """
    if not profile.reject_duplicates:
        return
    key = duplicate_key_columns(profile, INSTANT)
    keys = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(key))
    names = ", ".join(f"k{i}" for i in range(len(key)))
    con.execute(
        "CREATE TEMP TABLE repeated_hashes AS SELECT h FROM ("
        f"SELECT hash({', '.join(key)}) AS h FROM checked) GROUP BY h HAVING count(*) > 1"
    )
    con.execute(
        "CREATE TEMP TABLE duplicates AS SELECT parsed_no FROM ("
        f"SELECT parsed_no, row_number() OVER (PARTITION BY {names} ORDER BY parsed_no) AS n "
        f"FROM (SELECT parsed_no, {keys} FROM checked WHERE {duplicate_candidate_sql()} "
        f"AND hash({', '.join(key)}) IN (SELECT h FROM repeated_hashes))) WHERE n > 1"
    )
    con.execute(
        f"UPDATE checked SET reasons = list_append(reasons, {quote_literal(DUPLICATE_REASON)}) "
        "WHERE parsed_no IN (SELECT parsed_no FROM duplicates)"
    )


def _write_outputs(con: duckdb.DuckDBPyConnection, header: Header, out: SplitPaths) -> None:
    con.execute(
        f"COPY (SELECT {processed_csv_cells(header)} FROM checked WHERE len(reasons) = 0) "
        f"TO {quote_literal(str(out.processed_csv))} (FORMAT csv, HEADER true)"
    )
    con.execute(
        f"COPY (SELECT {processed_parquet_cells(header, 'source_row')} FROM checked "
        f"WHERE len(reasons) = 0) TO {quote_literal(str(out.processed_parquet))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    con.execute(
        "COPY ("
        "SELECT source_row, array_to_string(reasons, ';') AS reject_reason, "
        f"{rejected_cells(header)}, NULL AS raw_line FROM checked WHERE len(reasons) > 0 "
        f"UNION ALL SELECT source_row, '{MALFORMED_REASON}', {rejected_nulls(header)}, "
        f"{safe_cell_sql('trim(raw_line, chr(10) || chr(13))')} FROM malformed "
        f"ORDER BY source_row) TO {quote_literal(str(out.rejected_csv))} (FORMAT csv, HEADER true)"
    )


def _validate_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
) -> ValidationResult:
    malformed = _load(con, path, header, profile, now_iso)
    if malformed:
        _number_rows(con)
    _mark_duplicates(con, profile)
    (parsed,) = con.execute("SELECT count(*) FROM checked").fetchone() or (0,)
    if int(parsed) + malformed == 0:
        raise InputError("no data rows (header only)", code="no_rows")
    _write_outputs(con, header, out)
    return summarise(con, out, "(SELECT reasons FROM checked WHERE len(reasons) > 0)", malformed)


def validate_file(
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    *,
    now_iso: str,
    limits: EngineLimits,
) -> ValidationResult:
    """Validate `path` under `profile`, write the split, and count every row and reason."""
    check_reserved(header)
    result: ValidationResult | None = None
    for streaming in (True, False):
        con = connect(limits)
        try:
            # Rows keep the file's order from the scan to the outputs: no sort of the file.
            con.execute("SET preserve_insertion_order = true")
            if streaming:
                result = validate_streaming(con, path, header, profile, out, now_iso)
            else:
                result = _validate_table(con, path, header, profile, out, now_iso)
        finally:
            con.close()
        if result is not None:
            break
    assert result is not None
    return ValidationResult(**{**result.__dict__, "columns": output_columns(header)})
