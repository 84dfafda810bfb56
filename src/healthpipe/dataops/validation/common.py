"""SQL pieces shared by both validation paths (`staged`, `table`): the CSV scan, the
working column names, the output columns and cells, the malformed-record table and the
counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from healthpipe.constants import REQUIRED_COLUMNS, VITAL_COLUMNS
from healthpipe.dataops.engine import source_literal
from healthpipe.dataops.header import Header
from healthpipe.dataops.validation.types import (
    FAST_RECORD_BYTES,
    MALFORMED_REASON,
    MAX_RECORD_BYTES,
    MixedLineEndings,
    RecordTooLong,
    SplitPaths,
    ValidationResult,
)
from healthpipe.domain.formula import guard_formula_sql
from healthpipe.domain.validation_sql import (
    parsed_time_sql,
    quote_ident,
    quote_literal,
)
from healthpipe.errors import InputError

# Working columns are named __hp_…__ (the parsed event time, computed once per row, and
# the prepared vitals); DuckDB matches names case-insensitively, so a header holding such
# a name is refused (see `check_reserved`).
RESERVED_PREFIX = "__hp_"
INSTANT = f'"{RESERVED_PREFIX}event_instant__"'


def check_reserved(header: Header) -> None:
    reserved = [name for name in header.canonical if name.startswith(RESERVED_PREFIX)]
    if reserved:
        raise InputError(f"reserved column name in header: {reserved[0]}", code="bad_header")


RECORD_TOO_LONG = "Maximum line size of"
# Working columns (all under the reserved prefix, so no header name can collide):
ROW = f'"{RESERVED_PREFIX}row__"'  # the 1-based index among parsed records, in file order
REASONS = f'"{RESERVED_PREFIX}reasons__"'  # ';'-joined reasons, '' when valid
KEY = f'"{RESERVED_PREFIX}key__"'  # a hash of the duplicate identity


def read_csv_sql(
    path: Path, header: Header, *, rejects: bool = True, record_bytes: int = FAST_RECORD_BYTES
) -> str:
    """The file as text columns. With `rejects`, malformed records are skipped and recorded
    in `hp_reject_errors`; without, any malformed record is an error.

    The dialect is given, not sniffed (`auto_detect = false`): the sniffer refuses a whole
    file when a malformed record falls in its sample, where each such record should be
    rejected on its own."""
    columns = "{" + ", ".join(f"{quote_literal(n)}: 'VARCHAR'" for n in header.canonical) + "}"
    store = (
        "store_rejects = true, rejects_table = 'hp_reject_errors', "
        "rejects_scan = 'hp_reject_scans', "
        if rejects
        else ""
    )
    return (
        f"read_csv({source_literal(path)}, header = true, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {columns}, "
        f"compression = {quote_literal('gzip' if header.gzipped else 'none')}, "
        f"{store}strict_mode = true, max_line_size = {record_bytes}, "
        f"buffer_size = {2 * record_bytes})"
    )


def timed_scan_sql(path: Path, header: Header, record_bytes: int) -> str:
    """Every parsed record with its parsed event time (malformed ones go to the reject
    table)."""
    return (
        f"(SELECT *, {parsed_time_sql()} AS {INSTANT} "
        f"FROM {read_csv_sql(path, header, record_bytes=record_bytes)})"
    )


MIXED_LINE_ENDINGS = "state machine reached an invalid state"


def duckdb_reason(exc: duckdb.Error) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first[:200]


def unreadable(exc: duckdb.Error, record_bytes: int) -> Exception:
    """The error for a CSV DuckDB could not read: RecordTooLong when larger buffers may help."""
    if RECORD_TOO_LONG in str(exc) and record_bytes < MAX_RECORD_BYTES:
        return RecordTooLong()
    if MIXED_LINE_ENDINGS in str(exc):
        return MixedLineEndings()
    return InputError(f"not a readable CSV file: {duckdb_reason(exc)}", code="not_csv")


def load_malformed(
    con: duckdb.DuckDBPyConnection,
    blank_lines: Callable[[], Sequence[int]] = tuple,
    blank_lines_before: int = 0,
) -> int:
    """`malformed` (source_row, kinds, raw_line) from the reject table; refuses non-UTF-8.

    The reader numbers a malformed record by its line, blank lines counted, where it skips
    them as records: source_row counts records only (docs/architecture.md). `blank_lines`
    gives the numbers of the blank lines on the reader's count (`record_bounds.blank_lines`;
    asked only when a record is malformed), and `blank_lines_before` counts the blank lines
    before the first line the reader saw (a chunk's: `Chunk.blank_lines_before`)."""
    con.execute(
        "CREATE TEMP TABLE malformed AS "
        "SELECT line - 1 AS source_row, string_agg(DISTINCT error_type, '|') AS kinds, "
        "first(csv_line) AS raw_line FROM hp_reject_errors GROUP BY line"
    )
    (count,) = con.execute("SELECT count(*) FROM malformed").fetchone() or (0,)
    if count:
        _skip_blank_lines(con, blank_lines(), blank_lines_before)
    bad = con.execute(
        "SELECT min(source_row) FROM malformed WHERE kinds LIKE '%INVALID ENCODING%'"
    ).fetchone()
    if bad and bad[0] is not None:
        raise InputError(
            f"file is not UTF-8 encoded (first invalid bytes in data row {bad[0]}); "
            "re-export it as UTF-8",
            code="not_utf8",
        )
    return int(count)


def _skip_blank_lines(con: duckdb.DuckDBPyConnection, numbers: Sequence[int], before: int) -> None:
    """Number the malformed records among records only: less the blank lines before each."""
    if not numbers and not before:
        return
    con.execute(
        "CREATE TEMP TABLE hp_blank_lines AS SELECT unnest(?::BIGINT[]) AS line", [list(numbers)]
    )
    con.execute(
        f"UPDATE malformed SET source_row = source_row - {int(before)} - ("
        "SELECT count(*) FROM hp_blank_lines b WHERE b.line < malformed.source_row)"
    )
    con.execute("DROP TABLE hp_blank_lines")


def output_columns(header: Header) -> list[str]:
    return list(REQUIRED_COLUMNS) + list(header.extras)


def processed_csv_cells(header: Header) -> str:
    """Trimmed required cells and extras as written, made safe against formula injection.
    A valid vital is a plain decimal number, which `guard_formula_sql` leaves as it is."""
    cells = []
    for c in output_columns(header):
        col = quote_ident(c)
        if c in VITAL_COLUMNS:
            cells.append(f"trim({col}) AS {col}")
        elif c in REQUIRED_COLUMNS:
            cells.append(f"{guard_formula_sql(f'trim({col})')} AS {col}")
        else:
            cells.append(f"{guard_formula_sql(col)} AS {col}")
    return ", ".join(cells)


def processed_parquet_cells(header: Header, source_row: str) -> str:
    vitals = ", ".join(
        f"CAST(trim({quote_ident(c)}) AS DOUBLE) AS {quote_ident(c)}" for c in VITAL_COLUMNS
    )
    extras = "".join(f", {quote_ident(c)}" for c in header.extras)
    return (
        f"{source_row} AS source_row, {INSTANT} AS event_time, "
        f"trim(event_time) AS event_time_text, trim(user_id) AS user_id, {vitals}{extras}"
    )


def rejected_cells(header: Header) -> str:
    return ", ".join(
        f"{guard_formula_sql(quote_ident(c))} AS {quote_ident(c)}" for c in output_columns(header)
    )


def rejected_nulls(header: Header) -> str:
    return ", ".join(f"NULL AS {quote_ident(c)}" for c in output_columns(header))


def malformed_rejects_sql(header: Header) -> str:
    """The rejected-CSV rows of the malformed records (table `malformed`): no cells, the raw
    text instead."""
    raw = guard_formula_sql("trim(raw_line, chr(10) || chr(13))")
    return (
        f"SELECT source_row, '{MALFORMED_REASON}' AS reject_reason, {rejected_nulls(header)}, "
        f"{raw} AS raw_line FROM malformed"
    )


# One row per run of malformed records (table `malformed`): `before_no` parsed records come
# before it and `skipped` malformed records up to its end. The k-th parsed record is data
# record k + the `skipped` of the last gap with `before_no` < k.
MALFORMED_GAPS_SQL = (
    "SELECT before_no, max(skipped) AS skipped FROM ("
    "SELECT source_row - row_number() OVER (ORDER BY source_row) AS before_no, "
    "row_number() OVER (ORDER BY source_row) AS skipped FROM malformed) GROUP BY before_no"
)


def summarise(
    con: duckdb.DuckDBPyConnection, out: SplitPaths, rejected_rows: str, malformed: int
) -> ValidationResult:
    """Counts per reason from `rejected_rows` (every parsed record that failed, with its
    ';'-joined REASONS); users and time range from the written Parquet (the valid rows, parsed
    already)."""
    parquet = source_literal(out.processed_parquet)
    valid, users, first, last = con.execute(
        "SELECT count(*), count(DISTINCT user_id), CAST(min(event_time) AS VARCHAR), "
        f"CAST(max(event_time) AS VARCHAR) FROM read_parquet({parquet})"
    ).fetchone() or (0, 0, None, None)
    (failed,) = con.execute(f"SELECT count(*) FROM {rejected_rows}").fetchone() or (0,)
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM ("
            f"SELECT unnest(string_split({REASONS}, ';')) AS reason FROM {rejected_rows}) "
            "GROUP BY reason ORDER BY count(*) DESC, reason"
        ).fetchall()
    )
    if malformed:
        reasons[MALFORMED_REASON] = malformed
    rows_input = int(valid) + int(failed) + malformed
    return ValidationResult(
        rows_input=rows_input,
        rows_valid=int(valid),
        rows_rejected=rows_input - int(valid),
        reasons={str(k): int(v) for k, v in reasons.items()},
        users=int(users),
        first_event=first,
        last_event=last,
    )
