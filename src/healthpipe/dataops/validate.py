"""Validates a vitals CSV with DuckDB and splits it into processed and rejected outputs.

One pass parses the file (malformed records are captured by DuckDB's reject tables, never
dropped), every rule is evaluated per row, and the valid and rejected rows are written out.
Every input record ends in exactly one of the two outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from healthpipe.constants import REQUIRED_COLUMNS, VITAL_COLUMNS
from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.dataops.header import Header
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

MALFORMED_REASON = "malformed_row"


@dataclass(frozen=True)
class SplitPaths:
    processed_csv: Path
    processed_parquet: Path
    rejected_csv: Path


@dataclass(frozen=True)
class ValidationResult:
    rows_input: int
    rows_valid: int
    rows_rejected: int
    reasons: dict[str, int]
    users: int
    first_event: str | None
    last_event: str | None
    columns: list[str] = field(default_factory=list)


def _read_csv_sql(path: Path, header: Header) -> str:
    names = "[" + ", ".join(quote_literal(n) for n in header.canonical) + "]"
    return (
        f"read_csv({quote_literal(str(path))}, header = true, all_varchar = true, "
        f"delim = ',', quote = '\"', escape = '\"', names = {names}, "
        f"compression = {quote_literal('gzip' if header.gzipped else 'none')}, "
        "store_rejects = true, rejects_table = 'hp_reject_errors', "
        "rejects_scan = 'hp_reject_scans', strict_mode = true)"
    )


def _duckdb_reason(exc: duckdb.Error) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first[:200]


def _load(
    con: duckdb.DuckDBPyConnection, path: Path, header: Header, profile: RuleProfile, now: str
) -> None:
    """Parse the file once into `checked`, each row with its per-row reasons; malformed
    records land in `malformed` with their number."""
    try:
        con.execute(
            "CREATE TEMP TABLE checked AS SELECT row_number() OVER () AS parsed_no, "
            f"row_number() OVER () AS source_row, *, {reasons_list_sql(profile, now)} AS reasons "
            f"FROM {_read_csv_sql(path, header)}"
        )
    except duckdb.Error as exc:
        raise InputError(f"not a readable CSV file: {_duckdb_reason(exc)}", code="not_csv") from exc
    con.execute(
        "CREATE TEMP TABLE malformed AS "
        "SELECT line - 1 AS source_row, string_agg(DISTINCT error_type, '|') AS kinds, "
        "first(csv_line) AS raw_line FROM hp_reject_errors GROUP BY line"
    )
    bad = con.execute(
        "SELECT min(source_row) FROM malformed WHERE kinds LIKE '%INVALID ENCODING%'"
    ).fetchone()
    if bad and bad[0] is not None:
        raise InputError(
            f"file is not UTF-8 encoded (first invalid bytes in data row {bad[0]}); "
            "re-export it as UTF-8",
            code="not_utf8",
        )


def _number_rows(con: duckdb.DuckDBPyConnection) -> None:
    """source_row: the 1-based data-record index, counting malformed records too.

    Rows keep their file order in `checked` (updates never move rows), so the outputs need
    no sort.
    """
    (malformed,) = con.execute("SELECT count(*) FROM malformed").fetchone() or (0,)
    if not malformed:
        return
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

    A hash pass over the file finds the few keys seen more than once; only those rows are
    compared exactly and ranked, so no window or sort runs over the whole file.
    """
    if not profile.reject_duplicates:
        return
    key = duplicate_key_columns(profile)
    keys = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(key))
    names = ", ".join(f"k{i}" for i in range(len(key)))
    con.execute(
        "CREATE TEMP TABLE repeated_hashes AS SELECT h FROM ("
        f"SELECT hash({', '.join(key)}) AS h FROM checked WHERE {duplicate_candidate_sql()}) "
        "GROUP BY h HAVING count(*) > 1"
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


def _output_columns(header: Header) -> list[str]:
    return list(REQUIRED_COLUMNS) + list(header.extras)


def _write_processed(con: duckdb.DuckDBPyConnection, header: Header, out: SplitPaths) -> None:
    columns = _output_columns(header)
    required = set(REQUIRED_COLUMNS)
    csv_cells = ", ".join(
        f"{safe_cell_sql(f'trim({quote_ident(c)})' if c in required else quote_ident(c))} "
        f"AS {quote_ident(c)}"
        for c in columns
    )
    con.execute(
        f"COPY (SELECT {csv_cells} FROM checked WHERE len(reasons) = 0) "
        f"TO {quote_literal(str(out.processed_csv))} (FORMAT csv, HEADER true)"
    )
    vitals = ", ".join(
        f"CAST(trim({quote_ident(c)}) AS DOUBLE) AS {quote_ident(c)}" for c in VITAL_COLUMNS
    )
    extras = "".join(f", {quote_ident(c)}" for c in header.extras)
    con.execute(
        "COPY (SELECT source_row, TRY_CAST(trim(event_time) AS TIMESTAMPTZ) AS event_time, "
        f"trim(event_time) AS event_time_text, trim(user_id) AS user_id, {vitals}{extras} "
        "FROM checked WHERE len(reasons) = 0) "
        f"TO {quote_literal(str(out.processed_parquet))} (FORMAT parquet, COMPRESSION zstd)"
    )


def _write_rejected(con: duckdb.DuckDBPyConnection, header: Header, out: SplitPaths) -> None:
    columns = _output_columns(header)
    cells = ", ".join(f"{safe_cell_sql(quote_ident(c))} AS {quote_ident(c)}" for c in columns)
    nulls = ", ".join(f"NULL AS {quote_ident(c)}" for c in columns)
    con.execute(
        "COPY ("
        f"SELECT source_row, array_to_string(reasons, ';') AS reject_reason, {cells}, "
        "NULL AS raw_line FROM checked WHERE len(reasons) > 0 "
        f"UNION ALL SELECT source_row, '{MALFORMED_REASON}', {nulls}, "
        f"{safe_cell_sql('trim(raw_line, chr(10) || chr(13))')} FROM malformed "
        f"ORDER BY source_row) TO {quote_literal(str(out.rejected_csv))} (FORMAT csv, HEADER true)"
    )


def _summarise(con: duckdb.DuckDBPyConnection) -> ValidationResult:
    total, valid, users, first, last = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE len(reasons) = 0), "
        "count(DISTINCT trim(user_id)) FILTER (WHERE len(reasons) = 0), "
        "CAST(min(TRY_CAST(trim(event_time) AS TIMESTAMPTZ)) FILTER (WHERE len(reasons) = 0) "
        "AS VARCHAR), "
        "CAST(max(TRY_CAST(trim(event_time) AS TIMESTAMPTZ)) FILTER (WHERE len(reasons) = 0) "
        "AS VARCHAR) FROM checked"
    ).fetchone() or (0, 0, 0, None, None)
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM checked) "
            "GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
    )
    (malformed,) = con.execute("SELECT count(*) FROM malformed").fetchone() or (0,)
    if malformed:
        reasons[MALFORMED_REASON] = int(malformed)
    rows_input = int(total) + int(malformed)
    return ValidationResult(
        rows_input=rows_input,
        rows_valid=int(valid),
        rows_rejected=rows_input - int(valid),
        reasons={str(k): int(v) for k, v in reasons.items()},
        users=int(users),
        first_event=first,
        last_event=last,
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
    """Validate `path` under `profile`, write the split, and count every row and reason."""
    con = connect(limits)
    try:
        # Rows stay in file order from the scan to the outputs: no sort over the file.
        con.execute("SET preserve_insertion_order = true")
        _load(con, path, header, profile, now_iso)
        _number_rows(con)
        _mark_duplicates(con, profile)
        result = _summarise(con)
        if result.rows_input == 0:
            raise InputError("no data rows (header only)", code="no_rows")
        _write_processed(con, header, out)
        _write_rejected(con, header, out)
    finally:
        con.close()
    return ValidationResult(**{**result.__dict__, "columns": _output_columns(header)})
