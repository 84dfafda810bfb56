"""The staged validation path, for files with no or few malformed records (the usual case).

The CSV is parsed once, in file order, into a staging Parquet file that holds every
record's cells, its reasons ('' when it passes every per-row check), a hash of its
duplicate identity and its parsed event time. Parquet numbers rows for free
(`file_row_number`), so every later pass reads the staging file, column by column, instead
of parsing the CSV again:

1. the duplicate identities seen more than once (a hash aggregate over one column), then the
   exact repeats among the few rows with those hashes, each marked conflicting when its
   vital values differ from the first reading's;
2. the processed CSV and Parquet, and the rejected rows (failing a check or repeating):
   filters over the staging file, where repeats are a bitstring tested per row (no join and
   no sort, so every output keeps the file order).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.dataops.engine import source_literal
from healthpipe.dataops.header import Header
from healthpipe.dataops.record_bounds import blank_lines
from healthpipe.dataops.validation.common import (
    INSTANT,
    KEY,
    MALFORMED_GAPS_SQL,
    REASONS,
    RESERVED_PREFIX,
    ROW,
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

STAGED = "hp_staged"
# Runs of malformed records the staged path numbers with a CASE (each row tests the runs
# before it); a file with more takes the table path.
MAX_MALFORMED_RUNS = 64
# Distinct duplicate identities counted per aggregate (about 60 MB of hash table).
ROWS_PER_KEY_SLICE = 2_000_000
# Rows per row group of the staging file: half DuckDB's default (122,880), so the ordered
# writer holds half as much text while the threads' row groups wait their turn (10M uniform
# rows: the staging pass peaked at 284 MB RSS, 219 MB at this size, same CPU).
STAGING_ROW_GROUP_ROWS = 61_440


def staged_name(i: int) -> str:
    return quote_ident(f"{RESERVED_PREFIX}c{i}__")


# The staging file's column of the parsed event time: the scan parses it for the checks, and
# the processed Parquet and the repeats read it back rather than parse the text again (2M
# rows: the processed Parquet's write parsed it in about 0.25 CPU-s, ICU's time zone per row).
STAGED_INSTANT_NAME = f"{RESERVED_PREFIX}instant__"
STAGED_INSTANT = quote_ident(STAGED_INSTANT_NAME)


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    now: str,
    staged: Path,
    record_bytes: int,
) -> None:
    """Parse the CSV once into `staged`, and define the view STAGED over it (the output
    columns under their names, ROW, REASONS, KEY and the parsed event time)."""
    columns = output_columns(header)
    cells = ", ".join(f"{quote_ident(c)} AS {staged_name(i)}" for i, c in enumerate(columns))
    key = ", ".join(duplicate_key_columns(profile, INSTANT))
    try:
        con.execute(
            f"COPY (SELECT {cells}, {reasons_sql(profile, now, INSTANT)} AS {REASONS}, "
            f"hash({key}) AS {KEY}, {INSTANT} AS {STAGED_INSTANT} "
            f"FROM {timed_scan_sql(path, header, record_bytes)}) "
            f"TO {quote_literal(str(staged))} "
            f"(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE {STAGING_ROW_GROUP_ROWS})"
        )
    except duckdb.Error as exc:
        raise unreadable(exc, record_bytes) from exc
    named = ", ".join(f"{staged_name(i)} AS {quote_ident(c)}" for i, c in enumerate(columns))
    con.execute(
        f"CREATE VIEW {STAGED} AS SELECT file_row_number + 1 AS {ROW}, {named}, {REASONS}, "
        f"{KEY}, {STAGED_INSTANT} AS {INSTANT} "
        f"FROM read_parquet({source_literal(staged)}, file_row_number = true)"
    )


CONFLICT = quote_ident(f"{RESERVED_PREFIX}conflict__")


def _repeats(con: duckdb.DuckDBPyConnection, profile: RuleProfile, rows: int) -> None:
    """`repeats`: the ROW of every row repeating an earlier one's (user, instant), and
    CONFLICT, true when its vital values differ from the first such reading's."""
    con.execute(f"CREATE TEMP TABLE repeats ({ROW} BIGINT, {CONFLICT} BOOLEAN)")
    if not profile.reject_duplicates:
        return
    # One hash aggregate per slice of the key space keeps its table small at any file size.
    slices = max(1, -(-rows // ROWS_PER_KEY_SLICE))
    con.execute(f"CREATE TEMP TABLE repeated_keys ({KEY} UBIGINT)")
    for i in range(slices):
        con.execute(
            f"INSERT INTO repeated_keys SELECT {KEY} FROM {STAGED} "
            f"WHERE {KEY} % {slices} = {i} GROUP BY {KEY} HAVING count(*) > 1"
        )
    key = duplicate_key_columns(profile, INSTANT)
    keys = ", ".join(f"{expr} AS {RESERVED_PREFIX}k{i}" for i, expr in enumerate(key))
    names = ", ".join(f"{RESERVED_PREFIX}k{i}" for i in range(len(key)))
    rank = quote_ident(f"{RESERVED_PREFIX}n__")
    values = quote_ident(f"{RESERVED_PREFIX}values__")
    con.execute(
        f"INSERT INTO repeats SELECT {ROW}, {CONFLICT} FROM ("
        f"SELECT {ROW}, row_number() OVER w AS {rank}, "
        f"{values} IS DISTINCT FROM first_value({values}) OVER w AS {CONFLICT} "
        f"FROM (SELECT {ROW}, {keys}, {reading_values_sql()} AS {values} FROM {STAGED} "
        f"WHERE {duplicate_candidate_sql()} AND {KEY} IN (SELECT {KEY} FROM repeated_keys)) "
        f"WINDOW w AS (PARTITION BY {names} ORDER BY {ROW})) WHERE {rank} > 1"
    )


# Rows per bitstring of a bit test. DuckDB copies a variable's value into every vector
# (2,048 rows) that reads it, so one bitstring over the whole file cost O(rows²): 0.26
# CPU-s per test at 10M rows, 0.81 at 20M. Slices of 2^20 bits (128 KB) keep it linear.
BIT_SLICE_ROWS = 1 << 20


def bit_test(con: duckdb.DuckDBPyConnection, variable: str, where: str) -> str:
    """A per-row test, true for the rows of `repeats` matching `where`: a bit of one of the
    variables `variable`_k, each a bitstring over a slice of BIT_SLICE_ROWS rows, picked by
    a CASE tree over ROW (a filter, not a join, so every output keeps the file order without
    a sort)."""
    slices = con.execute(
        f"SELECT ({ROW} - 1) // {BIT_SLICE_ROWS} AS k, min({ROW}), max({ROW}) FROM repeats "
        f"WHERE {where} GROUP BY k ORDER BY k"
    ).fetchall()
    leaves: list[tuple[int, str]] = []  # (last ROW of the slice's range, its test)
    for k, low, high in slices:
        name = f"{variable}_{int(k)}"
        con.execute(
            f"SET VARIABLE {name} = (SELECT bitstring_agg({ROW}, {int(low)}, {int(high)}) "
            f"FROM repeats WHERE ({where}) AND {ROW} BETWEEN {int(low)} AND {int(high)})"
        )
        # least/greatest: the bit index stays in range where AND does not short-circuit.
        index = f"CAST(least(greatest({ROW} - {int(low)}, 0), {int(high - low)}) AS INTEGER)"
        test = (
            f"({ROW} BETWEEN {int(low)} AND {int(high)} "
            f"AND get_bit(getvariable('{name}'), {index}) = 1)"
        )
        leaves.append((int(high), test))
    return _case_tree(leaves) if leaves else "false"


def _case_tree(leaves: list[tuple[int, str]]) -> str:
    """The test of the leaf whose range holds ROW (leaves in ROW order, each with the last
    ROW of its range): a balanced CASE, so each row takes log2(len(leaves)) comparisons."""
    if len(leaves) == 1:
        return leaves[0][1]
    mid = len(leaves) // 2
    bound = leaves[mid - 1][0]
    return (
        f"(CASE WHEN {ROW} <= {bound} THEN {_case_tree(leaves[:mid])} "
        f"ELSE {_case_tree(leaves[mid:])} END)"
    )


def _source_row_sql(con: duckdb.DuckDBPyConnection, malformed: int) -> str | None:
    """The data-record index of each staged row: ROW plus the malformed records before it
    (a CASE over the runs of malformed records), or None when there are too many runs."""
    if not malformed:
        return ROW
    gaps = con.execute(
        f"SELECT before_no, skipped FROM ({MALFORMED_GAPS_SQL}) ORDER BY before_no DESC "
        f"LIMIT {MAX_MALFORMED_RUNS + 1}"
    ).fetchall()
    if len(gaps) > MAX_MALFORMED_RUNS:
        return None
    whens = " ".join(f"WHEN {ROW} > {int(b)} THEN {int(s)}" for b, s in gaps)
    return f"({ROW} + CASE {whens} ELSE 0 END)"


def write_split(
    con: duckdb.DuckDBPyConnection,
    header: Header,
    out: SplitPaths,
    repeat: str,
    repeat_reason: str,
    source: str,
    malformed: int,
) -> None:
    """The processed CSV, the processed Parquet and the rejected CSV, one after the other
    (one writer at a time: docs/scaling.md says why), each an ordered filter of the staging
    file; then `rejected_rows`, the reasons of the rejected rows, for the counts."""
    keep = f"{REASONS} = '' AND NOT {repeat}"
    con.execute(
        f"COPY (SELECT {processed_csv_cells(header)} FROM {STAGED} WHERE {keep}) "
        f"TO {quote_literal(str(out.processed_csv))} (FORMAT csv, HEADER true)"
    )
    con.execute(
        f"COPY (SELECT {processed_parquet_cells(header, source)} FROM {STAGED} WHERE {keep}) "
        f"TO {quote_literal(str(out.processed_parquet))} (FORMAT parquet, COMPRESSION zstd)"
    )
    dup = repeat_reason
    rejected = f"{REASONS} <> '' OR {repeat}"
    reasons = (
        f"CASE WHEN NOT {repeat} THEN {REASONS} WHEN {REASONS} = '' THEN {dup} "
        f"ELSE {REASONS} || ';' || {dup} END"
    )
    rows = (
        f"SELECT {source} AS source_row, {reasons} AS reject_reason, "
        f"{rejected_cells(header)}, NULL AS raw_line FROM {STAGED} WHERE {rejected}"
    )
    if malformed:  # the malformed records go in among them: a sort of the rejected rows
        rows = f"SELECT * FROM ({rows} UNION ALL {malformed_rejects_sql(header)}) ORDER BY 1"
    con.execute(
        f"COPY ({rows}) TO {quote_literal(str(out.rejected_csv))} (FORMAT csv, HEADER true)"
    )
    # A second, narrow pass for the counts (rather than a table of the rejected rows with
    # their cells: docs/scaling.md, "No sort, one writer at a time").
    con.execute(
        f"CREATE TEMP TABLE rejected_rows AS SELECT {reasons} AS {REASONS} "
        f"FROM {STAGED} WHERE {rejected}"
    )


def validate_staged(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    header: Header,
    profile: RuleProfile,
    out: SplitPaths,
    now_iso: str,
    record_bytes: int,
) -> ValidationResult | None:
    """The split, or None when the malformed records form more than MAX_MALFORMED_RUNS runs
    (the table path numbers those); `con` must preserve insertion order."""
    staged = out.processed_parquet.with_name(f"{out.processed_parquet.stem}.staged.parquet")
    try:
        stage_csv(con, path, header, profile, now_iso, staged, record_bytes)
        malformed = load_malformed(con, lambda: blank_lines(path, header.gzipped))
        source = _source_row_sql(con, malformed)
        if source is None:
            return None
        (rows,) = con.execute(f"SELECT count(*) FROM {STAGED}").fetchone() or (0,)
        if not rows and not malformed:
            raise InputError("no data rows (header only)", code="no_rows")
        _repeats(con, profile, int(rows))
        repeat = bit_test(con, "hp_excluded", "true")
        conflict = bit_test(con, "hp_conflicts", CONFLICT) if profile.conflicting_readings else ""
        reason = repeat_reason_sql(profile, conflict)
        write_split(con, header, out, repeat, reason, source, malformed)
        return summarise(con, out, "rejected_rows", malformed)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {STAGED}")
        staged.unlink(missing_ok=True)
