"""The readings the findings are looked for in: the processed ones and the conflicting ones
from the rejected CSV, and the `users` table (each user's number, readings and baselines)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.dataops.engine import source_literal
from healthpipe.domain.anomaly_sql import (
    BASELINE_METRICS,
    BASELINE_STATS,
    baseline_column,
    baselines_sql,
)
from healthpipe.domain.formula import unguard_formula_sql
from healthpipe.domain.validation_sql import quote_ident, quote_literal

CONFLICTING_REASON = "conflicting_reading"


def _unescaped_cell_sql(col: str) -> str:
    """A rejected-CSV text cell as ingest read it: without the `'` put before a formula."""
    return f"trim({unguard_formula_sql(col)})"


def conflicting_rows(con: duckdb.DuckDBPyConnection, rejected_csv: Path) -> int:
    """Table `conflicting`: the rows of the rejected CSV whose only reason is
    CONFLICTING_REASON (the same participant and instant as a kept reading, other values),
    typed as the processed readings. Returns their number. Not a temporary table: the groups
    of the findings read it on cursors of their own."""
    vitals = ", ".join(
        f"TRY_CAST(trim({quote_ident(m)}) AS DOUBLE) AS {quote_ident(m)}" for m in VITAL_COLUMNS
    )
    con.execute(
        "CREATE TABLE conflicting AS SELECT CAST(source_row AS BIGINT) AS source_row, "
        f"{_unescaped_cell_sql('user_id')} AS user_id, "
        f"TRY_CAST(trim(event_time) AS TIMESTAMPTZ) AS event_time, {vitals} "
        f"FROM read_csv({source_literal(rejected_csv)}, header = true, all_varchar = true) "
        f"WHERE reject_reason = {quote_literal(CONFLICTING_REASON)}"
    )
    (count,) = con.execute("SELECT count(*) FROM conflicting").fetchone() or (0,)
    return int(count)


def readings_sql(parquet: str, with_conflicting: bool) -> str:
    """The readings anomalies are found in: the processed ones, and the conflicting ones
    (flagged `conflicting`) when there are any."""
    names = ("source_row", "user_id", "event_time", *VITAL_COLUMNS)
    columns = ", ".join(quote_ident(c) for c in names)
    processed = f"SELECT {columns}, FALSE AS conflicting FROM {parquet}"
    if not with_conflicting:
        return f"({processed})"
    return f"({processed} UNION ALL SELECT {columns}, TRUE AS conflicting FROM conflicting)"


def users_table(con: duckdb.DuckDBPyConnection) -> None:
    """`users`: uid (1, 2, ... in user_id order), user_id, readings and the user's baselines
    (med_<metric>, mad_<metric>; NULL without one). Not a temporary table: the parts of the
    anomaly file are joined on a cursor of their own, which needs it."""
    metrics = ", ".join(quote_literal(m) for m in BASELINE_METRICS)
    counts = f"(SELECT * FROM value_counts WHERE x IS NOT NULL AND metric IN ({metrics}))"
    con.execute(f"CREATE TEMP TABLE baselines AS {baselines_sql(counts)}")
    wide = ", ".join(
        f"max({stat}) FILTER (WHERE metric = {quote_literal(m)}) AS {baseline_column(stat, m)}"
        for m in BASELINE_METRICS
        for stat in BASELINE_STATS
    )
    con.execute(
        "CREATE TABLE users AS SELECT row_number() OVER (ORDER BY r.user_id NULLS LAST) "
        "AS uid, r.user_id, r.readings, b.* EXCLUDE (user_id) FROM (SELECT user_id, "
        f"sum(n) AS readings FROM value_counts WHERE metric = {quote_literal(VITAL_COLUMNS[0])} "
        f"GROUP BY user_id) r LEFT JOIN (SELECT user_id, {wide} FROM baselines "
        "GROUP BY user_id) b ON b.user_id = r.user_id"
    )
