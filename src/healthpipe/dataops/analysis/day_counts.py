"""A file's readings as per-participant, per-day histograms at the chart's resolution (what
the participant-history store keeps, `documents.history.DayHistogram`), and the baselines a
participant's history gives, written over the `users` table's file-only ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb

from healthpipe.dataops.analysis.common import grouping_id, parquet_source
from healthpipe.dataops.engine import EngineLimits, connect, source_literal
from healthpipe.dataops.lake_write import utc_day
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import BASELINE_METRICS, baseline_column
from healthpipe.domain.validation_sql import quote_ident, quote_literal

# (user_id, reading day, vital, {value × CHART_SCALE[vital] (a whole number): readings})
DayCount = tuple[str, date, str, dict[int, int]]
# (user_id, vital, median, MAD, mean absolute deviation)
BaselineRow = tuple[str, str, float, float, float]
INSERT_BATCH = 1000


def day_counts(parquet: Path, limits: EngineLimits) -> list[DayCount]:
    """One scan of the processed file (or of a group's readings, `common.parquet_source`):
    per participant, reading day (UTC) and vital with a baseline, how many readings had each
    charted value (half-up, as `clinical.chart_value`), in user, day, vital and value order.
    One row per participant-day and vital, its values and counts as two lists: a row per
    value would leave the process holding the memory of hundreds of thousands of tuples on a
    file where most values are distinct.

    The counts are one GROUPING SETS aggregate, a set (user, day, vital) per vital, over the
    readings with their day and charted values worked out once each. The UNPIVOT it replaces
    made a row per reading and vital before grouping them (2M rows: 0.75-0.79 CPU-s against
    0.52-0.55 realistic, 0.67-0.71 against 0.45-0.48 uniform; the same rows)."""
    vitals = ", ".join(quote_ident(m) for m in BASELINE_METRICS)
    # day and bins per reading (once per reading, not once per vital)
    bins = ", ".join(
        f"CAST(floor({quote_ident(m)} * {cl.CHART_SCALE[m]} + 0.5 + {cl.ROUNDING_EPSILON!r}) "
        f"AS BIGINT) AS {quote_ident(m)}"
        for m in BASELINE_METRICS
    )
    sets = ", ".join(f"(user_id, day, {quote_ident(m)})" for m in BASELINE_METRICS)
    # each vital's counts: its set's rows
    per_vital = " UNION ALL ".join(
        f"SELECT user_id, day, {quote_literal(m)} AS metric, {quote_ident(m)} AS bin, n "
        f"FROM counted WHERE gid = {grouping_id(BASELINE_METRICS, (m,))} "
        f"AND {quote_ident(m)} IS NOT NULL"
        for m in BASELINE_METRICS
    )
    src = f"read_parquet({parquet_source(parquet)})"
    con = connect(limits)
    try:
        rows = con.execute(
            f"WITH counted AS (SELECT user_id, day, {vitals}, grouping_id({vitals}) AS gid, "
            f"count(*) AS n FROM (SELECT user_id, {utc_day('event_time')} AS day, {bins} "
            f"FROM {src} WHERE user_id IS NOT NULL AND event_time IS NOT NULL) "
            f"GROUP BY GROUPING SETS ({sets})) "
            "SELECT user_id, day, metric, list(bin ORDER BY bin), list(n ORDER BY bin) "
            f"FROM ({per_vital}) GROUP BY user_id, day, metric ORDER BY user_id, day, metric"
        ).fetchall()
    finally:
        con.close()
    return [(str(u), d, str(m), dict(zip(bins, ns, strict=True))) for u, d, m, bins, ns in rows]


def day_range(parquet: Path, limits: EngineLimits) -> tuple[date, date] | None:
    """The first and last reading day (UTC) of `day_counts(parquet)`'s rows, without building
    them: the days of readings with a participant, a time and at least one vital with a
    baseline (the day counts leave out an empty value, so a reading whose baseline vitals
    are all empty). None: no such reading."""
    some = " OR ".join(f"{quote_ident(m)} IS NOT NULL" for m in BASELINE_METRICS)
    day = utc_day("event_time")
    con = connect(limits)
    try:
        first, last = con.execute(
            f"SELECT min({day}), max({day}) FROM read_parquet({source_literal(parquet)}) "
            f"WHERE user_id IS NOT NULL AND event_time IS NOT NULL AND ({some})"
        ).fetchone() or (None, None)
    finally:
        con.close()
    return None if first is None else (first, last)


def apply_history_baselines(
    con: duckdb.DuckDBPyConnection, baselines: Sequence[BaselineRow]
) -> None:
    """Write the baselines of participants with a history over their file-only ones in the
    `users` table (participants without a history keep the file's)."""
    if not baselines:
        return
    con.execute(
        "CREATE TEMP TABLE history_baselines (user_id VARCHAR, metric VARCHAR, med DOUBLE, "
        "mad DOUBLE, meanad DOUBLE)"
    )
    for i in range(0, len(baselines), INSERT_BATCH):
        values = ", ".join(
            f"({quote_literal(u)}, {quote_literal(m)}, {med!r}, {mad!r}, {meanad!r})"
            for u, m, med, mad, meanad in baselines[i : i + INSERT_BATCH]
        )
        con.execute(f"INSERT INTO history_baselines VALUES {values}")
    for m in BASELINE_METRICS:
        sets = ", ".join(f"{baseline_column(s, m)} = h.{s}" for s in ("med", "mad", "meanad"))
        con.execute(
            f"UPDATE users SET {sets} FROM history_baselines h "
            f"WHERE h.user_id = users.user_id AND h.metric = {quote_literal(m)}"
        )
    con.execute("DROP TABLE history_baselines")
