"""The table path, for files whose malformed records form many runs: the CSV is parsed once
into a table (`checked`) whose rows are numbered, counting the malformed records, by an
as-of join on the runs; duplicates are marked by an update; the outputs are ordered
selections of the table."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.header import Header
from healthpipe.dataops.record_bounds import blank_lines
from healthpipe.dataops.validation.common import (
    INSTANT,
    MALFORMED_GAPS_SQL,
    REASONS,
    ROW,
    load_malformed,
    malformed_rejects_sql,
    processed_csv_cells,
    processed_parquet_cells,
    rejected_cells,
    summarise,
    timed_scan_sql,
    unreadable,
)
from healthpipe.dataops.validation.types import SplitPaths, ValidationResult
from healthpipe.domain.rules import RuleProfile
from healthpipe.domain.validation_sql import (
    duplicate_candidate_sql,
    duplicate_key_columns,
    quote_ident,
    quote_literal,
    reading_values_sql,
    reasons_sql,
    repeat_reason_sql,
)
from healthpipe.errors import InputError

# The data-record index of each row (ROW counts parsed records only).
SOURCE_ROW = '"__hp_source_row__"'


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    now: str,
    record_bytes: int,
) -> int:
    """Parse the file once into `checked`, each row with its per-row reasons; malformed
    records land in `malformed` with their number. Returns the malformed count."""
    cols = ", ".join(quote_ident(c) for c in header.canonical)
    try:
        con.execute(
            f"CREATE TEMP TABLE checked AS SELECT {ROW}, {ROW} AS {SOURCE_ROW}, {cols}, "
            f"{INSTANT}, {reasons_sql(profile, now, INSTANT)} AS {REASONS} FROM ("
            f"SELECT row_number() OVER () AS {ROW}, * "
            f"FROM {timed_scan_sql(path, header, record_bytes)})"
        )
    except duckdb.Error as exc:
        raise unreadable(exc, record_bytes) from exc
    return load_malformed(con, lambda: blank_lines(path, header.gzipped))


def _number_rows(con: duckdb.DuckDBPyConnection) -> None:
    """SOURCE_ROW: the 1-based data-record index, counting malformed records too.

    Rows keep their file order in `checked` (updates never move rows), so the outputs need
    no sort.
    """
    # The k-th parsed record sits at k + #{malformed j : m_j - j < k}.
    con.execute(f"CREATE TEMP TABLE gaps AS {MALFORMED_GAPS_SQL}")
    con.execute(
        f"UPDATE checked SET {SOURCE_ROW} = checked.{ROW} + g.skipped FROM ("
        f"SELECT p.{ROW}, g.skipped FROM (SELECT {ROW} FROM checked) p "
        f"ASOF JOIN gaps g ON p.{ROW} > g.before_no) g WHERE checked.{ROW} = g.{ROW}"
    )


def _mark_duplicates(con: duckdb.DuckDBPyConnection, profile: RuleProfile) -> None:
    """Append `duplicate_reading` to every repeat of an earlier (user, instant) reading
    (`conflicting_reading` when its vital values differ from the first reading's).

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
        f"CREATE TEMP TABLE duplicates AS SELECT {ROW}, conflict FROM ("
        f"SELECT {ROW}, row_number() OVER w AS n, "
        "vals IS DISTINCT FROM first_value(vals) OVER w AS conflict "
        f"FROM (SELECT {ROW}, {keys}, {reading_values_sql()} AS vals FROM checked "
        f"WHERE {duplicate_candidate_sql()} "
        f"AND hash({', '.join(key)}) IN (SELECT h FROM repeated_hashes)) "
        f"WINDOW w AS (PARTITION BY {names} ORDER BY {ROW})) WHERE n > 1"
    )
    dup = repeat_reason_sql(profile, "d.conflict")
    con.execute(
        f"UPDATE checked SET {REASONS} = CASE WHEN {REASONS} = '' THEN {dup} "
        f"ELSE {REASONS} || ';' || {dup} END FROM duplicates d WHERE checked.{ROW} = d.{ROW}"
    )


def _write_outputs(con: duckdb.DuckDBPyConnection, header: Header, out: SplitPaths) -> None:
    con.execute(
        f"COPY (SELECT {processed_csv_cells(header)} FROM checked WHERE {REASONS} = '') "
        f"TO {quote_literal(str(out.processed_csv))} (FORMAT csv, HEADER true)"
    )
    con.execute(
        f"COPY (SELECT {processed_parquet_cells(header, SOURCE_ROW)} FROM checked "
        f"WHERE {REASONS} = '') TO {quote_literal(str(out.processed_parquet))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    con.execute(
        "COPY ("
        f"SELECT {SOURCE_ROW} AS source_row, {REASONS} AS reject_reason, "
        f"{rejected_cells(header)}, NULL AS raw_line FROM checked WHERE {REASONS} <> '' "
        f"UNION ALL {malformed_rejects_sql(header)} "
        f"ORDER BY source_row) TO {quote_literal(str(out.rejected_csv))} (FORMAT csv, HEADER true)"
    )


def validate_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
    record_bytes: int,
) -> ValidationResult:
    """The split; `con` must preserve insertion order."""
    malformed = _load(con, path, header, profile, now_iso, record_bytes)
    if malformed:
        _number_rows(con)
    _mark_duplicates(con, profile)
    (parsed,) = con.execute("SELECT count(*) FROM checked").fetchone() or (0,)
    if int(parsed) + malformed == 0:
        raise InputError("no data rows (header only)", code="no_rows")
    _write_outputs(con, header, out)
    return summarise(con, out, f"(SELECT {REASONS} FROM checked WHERE {REASONS} <> '')", malformed)
