"""Validates a vitals CSV with DuckDB and splits it into processed and rejected outputs.

Malformed records are captured by DuckDB's reject tables, never dropped; every rule is
evaluated per row; every input record ends in exactly one of the two outputs, which keep
the file's order. Files without malformed records take the staged path
(`validate_stream`: one parse into a staging Parquet file); the others are numbered through
a table, here. The longest record is measured first (`record_scan`), since DuckDB loses a
record longer than its buffers without a trace: files holding a record longer than
FAST_RECORD_BYTES are read with larger buffers, and a file holding one longer than
MAX_RECORD_BYTES is refused (`record_too_long`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header
from healthpipe.dataops.record_scan import (
    RecordScan,
    first_record_longer_than,
    scan_records,
    with_lf_line_endings,
)
from healthpipe.dataops.split_sql import (
    FAST_RECORD_BYTES,
    INSTANT,
    MALFORMED_GAPS_SQL,
    MALFORMED_REASON,
    MAX_RECORD_BYTES,
    REASONS,
    ROW,
    MixedLineEndings,
    RecordTooLong,
    SplitPaths,
    ValidationResult,
    check_reserved,
    load_malformed,
    malformed_rejects_sql,
    output_columns,
    processed_csv_cells,
    processed_parquet_cells,
    rejected_cells,
    summarise,
    timed_scan_sql,
    unreadable,
)
from healthpipe.dataops.validate_stream import validate_staged
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

__all__ = ["MALFORMED_REASON", "SplitPaths", "ValidationResult", "validate_file"]
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
    return load_malformed(con)


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


def _validate_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
    record_bytes: int,
) -> ValidationResult:
    malformed = _load(con, path, header, profile, now_iso, record_bytes)
    if malformed:
        _number_rows(con)
    _mark_duplicates(con, profile)
    (parsed,) = con.execute("SELECT count(*) FROM checked").fetchone() or (0,)
    if int(parsed) + malformed == 0:
        raise InputError("no data rows (header only)", code="no_rows")
    _write_outputs(con, header, out)
    return summarise(con, out, f"(SELECT {REASONS} FROM checked WHERE {REASONS} <> '')", malformed)


def _validate(
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
    limits: EngineLimits,
    record_bytes: int,
) -> ValidationResult:
    for staged in (True, False):
        con = connect(limits)
        try:
            # Rows keep the file's order from the scan to the outputs: no sort of the file.
            con.execute("SET preserve_insertion_order = true")
            if staged:
                result = validate_staged(con, path, header, profile, out, now_iso, record_bytes)
            else:
                result = _validate_table(con, path, header, profile, out, now_iso, record_bytes)
        finally:
            con.close()
        if result is not None:
            return result
    raise AssertionError("the table path always returns a result")


def record_bytes_for(path: Path, header: Header, scan: RecordScan) -> int:
    """The longest record the file's buffers must hold: FAST_RECORD_BYTES or
    MAX_RECORD_BYTES; InputError(`record_too_long`) when a record is longer than that."""
    longest = scan.longest
    if longest <= FAST_RECORD_BYTES:
        return FAST_RECORD_BYTES
    if longest <= MAX_RECORD_BYTES:
        return MAX_RECORD_BYTES
    # The scan may measure long where a literal quote sits in an unquoted field: read it.
    number = first_record_longer_than(path, header.gzipped, MAX_RECORD_BYTES)
    if number is None:
        return MAX_RECORD_BYTES
    raise InputError(
        f"data record {number} is longer than {MAX_RECORD_BYTES // (1024 * 1024)} MB, the "
        "longest record healthpipe reads; shorten or remove it",
        code="record_too_long",
    )


def validate_file(
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    *,
    now_iso: str,
    limits: EngineLimits,
) -> ValidationResult:
    """Validate `path` under `profile`, write the split, and count every row and reason.
    A file mixing CRLF and LF line endings is read from a copy with LF endings only."""
    check_reserved(header)
    scan = scan_records(path, header.gzipped)
    if not scan.mixed_endings:
        try:
            return _validate_file(path, header, profile, out, now_iso, limits, scan)
        except MixedLineEndings:
            pass
    copy = out.processed_csv.with_name(f"{out.processed_csv.stem}.lf.csv")
    try:
        with_lf_line_endings(path, header.gzipped, copy)
        plain = Header(header.raw_names, header.canonical, gzipped=False)
        try:
            scan = scan_records(copy, gzipped=False)
            return _validate_file(copy, plain, profile, out, now_iso, limits, scan)
        except MixedLineEndings:
            reason = "not a readable CSV file: the CSV parser reached an invalid state"
            raise InputError(reason, code="not_csv") from None
    finally:
        copy.unlink(missing_ok=True)


def _validate_file(
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
    limits: EngineLimits,
    scan: RecordScan,
) -> ValidationResult:
    try:
        record_bytes = record_bytes_for(path, header, scan)
        result = _validate(path, header, profile, out, now_iso, limits, record_bytes)
    except RecordTooLong:
        result = _validate(path, header, profile, out, now_iso, limits, MAX_RECORD_BYTES)
    return ValidationResult(**{**result.__dict__, "columns": output_columns(header)})
