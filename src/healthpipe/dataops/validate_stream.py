"""The streaming validation path, for files without malformed records (the usual case).

The CSV is scanned a few times instead of being held in a table: DuckDB's reader is far
cheaper than materialising and spilling the file. Every scan numbers records the same way
(a streaming `row_number`, in file order), so record numbers join the scans:

1. the rows failing a per-row check, with their reasons (few, kept in a table);
2. hashes of the duplicate identity seen more than once, then the exact repeats among the
   rows with those hashes (few);
3. the processed CSV and Parquet, written straight from the scan: the excluded records are
   a bitstring constant tested per row (no join, so the output keeps the file order).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.header import Header
from healthpipe.dataops.split_sql import (
    INSTANT,
    SplitPaths,
    ValidationResult,
    duckdb_reason,
    load_malformed,
    numbered_scan_sql,
    output_columns,
    processed_csv_cells,
    processed_parquet_cells,
    rejected_cells,
    summarise,
)
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import (
    DUPLICATE_REASON,
    duplicate_candidate_sql,
    duplicate_key_columns,
    quote_ident,
    quote_literal,
    reasons_list_sql,
)
from healthpipe.errors import InputError


def _failing_rows(
    con: duckdb.DuckDBPyConnection, path: Path, header: Header, profile: RuleProfile, now: str
) -> None:
    cols = ", ".join(quote_ident(c) for c in output_columns(header))
    try:
        con.execute(
            f"CREATE TEMP TABLE failing AS SELECT parsed_no, {cols}, reasons FROM ("
            f"SELECT *, {reasons_list_sql(profile, now, INSTANT)} AS reasons "
            f"FROM {numbered_scan_sql(path, header, prepared=True)}) WHERE len(reasons) > 0"
        )
    except duckdb.Error as exc:
        raise InputError(f"not a readable CSV file: {duckdb_reason(exc)}", code="not_csv") from exc


def _repeats(
    con: duckdb.DuckDBPyConnection, path: Path, header: Header, profile: RuleProfile
) -> None:
    """`repeats`: every record repeating an earlier one's (user, instant), with its cells."""
    cols = ", ".join(quote_ident(c) for c in output_columns(header))
    if not profile.reject_duplicates:
        con.execute(f"CREATE TEMP TABLE repeats AS SELECT parsed_no, {cols} FROM failing LIMIT 0")
        return
    key = duplicate_key_columns(profile, INSTANT)
    scan = numbered_scan_sql(path, header, rejects=False)
    con.execute(
        "CREATE TEMP TABLE repeated_hashes AS SELECT h FROM ("
        f"SELECT hash({', '.join(key)}) AS h FROM {scan}) GROUP BY h HAVING count(*) > 1"
    )
    keys = ", ".join(f"{expr} AS hp_k{i}" for i, expr in enumerate(key))
    names = ", ".join(f"hp_k{i}" for i in range(len(key)))
    con.execute(
        f"CREATE TEMP TABLE repeats AS SELECT parsed_no, {cols} FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {names} ORDER BY parsed_no) AS hp_n "
        f"FROM (SELECT *, {keys} FROM {scan} WHERE {duplicate_candidate_sql()} "
        f"AND hash({', '.join(key)}) IN (SELECT h FROM repeated_hashes))) WHERE hp_n > 1"
    )


def _keep_predicate(con: duckdb.DuckDBPyConnection) -> tuple[str, int]:
    """A per-row test that is true for records not excluded, and the excluded count."""
    con.execute(
        "CREATE TEMP TABLE excluded AS SELECT parsed_no FROM failing "
        "UNION SELECT parsed_no FROM repeats"
    )
    (count, last) = con.execute("SELECT count(*), max(parsed_no) FROM excluded").fetchone() or (
        0,
        None,
    )
    if not count:
        return "true", 0
    con.execute(
        "SET VARIABLE hp_excluded = (SELECT bitstring_agg(parsed_no, 1, "
        f"{int(last)}) FROM excluded)"
    )
    test = "get_bit(getvariable('hp_excluded'), CAST(parsed_no - 1 AS INTEGER)) = 0"
    return f"(parsed_no > {int(last)} OR {test})", int(count)


def _write(
    con: duckdb.DuckDBPyConnection, path: Path, header: Header, out: SplitPaths, keep: str
) -> None:
    scan = numbered_scan_sql(path, header, rejects=False)
    con.execute(
        f"COPY (SELECT {processed_csv_cells(header)} FROM {scan} WHERE {keep}) "
        f"TO {quote_literal(str(out.processed_csv))} (FORMAT csv, HEADER true)"
    )
    con.execute(
        f"COPY (SELECT {processed_parquet_cells(header, 'parsed_no')} FROM {scan} "
        f"WHERE {keep}) TO {quote_literal(str(out.processed_parquet))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    dup = quote_literal(DUPLICATE_REASON)
    cols = ", ".join(quote_ident(c) for c in output_columns(header))
    con.execute(
        "CREATE TEMP TABLE rejected_rows AS "
        f"SELECT f.parsed_no, {', '.join(f'f.{quote_ident(c)}' for c in output_columns(header))}, "
        f"CASE WHEN r.parsed_no IS NULL THEN f.reasons ELSE list_append(f.reasons, {dup}) END "
        "AS reasons FROM failing f LEFT JOIN repeats r USING (parsed_no) "
        f"UNION ALL SELECT parsed_no, {cols}, [{dup}] FROM repeats "
        "WHERE parsed_no NOT IN (SELECT parsed_no FROM failing)"
    )
    con.execute(
        f"COPY (SELECT parsed_no AS source_row, array_to_string(reasons, ';') AS reject_reason, "
        f"{rejected_cells(header)}, NULL AS raw_line FROM rejected_rows ORDER BY parsed_no) "
        f"TO {quote_literal(str(out.rejected_csv))} (FORMAT csv, HEADER true)"
    )


def _has_rows(con: duckdb.DuckDBPyConnection, path: Path, header: Header) -> bool:
    scan = numbered_scan_sql(path, header, rejects=False)
    return con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {scan} LIMIT 1)").fetchone() == (1,)


def validate_streaming(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
) -> ValidationResult | None:
    """The split, or None when the file has malformed records (the table path numbers
    those); `con` must preserve insertion order."""
    _failing_rows(con, path, header, profile, now_iso)
    if load_malformed(con):
        return None
    _repeats(con, path, header, profile)
    keep, excluded = _keep_predicate(con)
    if not excluded and not _has_rows(con, path, header):
        raise InputError("no data rows (header only)", code="no_rows")
    _write(con, path, header, out, keep)
    return summarise(con, out, "rejected_rows", 0)
