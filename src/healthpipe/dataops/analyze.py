"""Statistics, anomalies and episodes over a processed Parquet file, in DuckDB SQL.

Returns bounded facts (sizes do not grow with the file): per-metric statistics and histograms,
NEWS2 and BP-category distributions, anomaly counts, the top anomalies, episodes and per-user
risk rows. The full anomaly list is written to a Parquet file next to the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.domain.anomaly_sql import (
    BASELINE_METRICS,
    baseline_anomalies_sql,
    bp_category_sql,
    clinical_anomalies_sql,
    partial_news2_sql,
)
from healthpipe.domain.clinical import LOW_SIDE_KINDS
from healthpipe.domain.episodes import MIN_EPISODE_READINGS
from healthpipe.domain.validation_sql import quote_ident, quote_literal

HISTOGRAM_BINS = 24
TOP_ANOMALIES = 50
TOP_EPISODES = 100
TOP_USERS = 25
TIMELINE_BUCKETS = 48
SEVERITY_NAMES = {1: "low", 2: "medium", 3: "high"}
# Per-user medians hold every value of a user: the baseline runs over groups of users of
# about this many readings at a time (about 40 MB of values under a 256 MB limit).
ROWS_PER_MEDIAN_PASS = 2_000_000


@dataclass(frozen=True)
class AnalysisLimits:
    top_anomalies: int = TOP_ANOMALIES
    top_episodes: int = TOP_EPISODES
    top_users: int = TOP_USERS


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float):
            value = round(value, 4)
        out[key] = _iso(value)
    return out


def _load(con: duckdb.DuckDBPyConnection, parquet: Path) -> None:
    """`readings` in (user, time, source_row) order; `ord` numbers them in that order.

    `ord` only ever serves to find consecutive readings of one user (episode runs), so a
    global index works as well as a per-user one; a sort spills to disk under the memory
    limit, where a partitioned window over the whole file does not.
    """
    con.execute("SET preserve_insertion_order = true")
    con.execute(
        "CREATE TEMP TABLE readings AS SELECT *, row_number() OVER () AS ord FROM ("
        f"SELECT * FROM read_parquet({quote_literal(str(parquet))}) "
        "ORDER BY user_id, event_time NULLS LAST, source_row)"
    )
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE TEMP TABLE anomalies AS {clinical_anomalies_sql('readings')}")
    (rows,) = con.execute("SELECT count(*) FROM readings").fetchone() or (0,)
    buckets = max(1, -(-int(rows) // ROWS_PER_MEDIAN_PASS))
    for bucket in range(buckets):
        users = "readings"
        if buckets > 1:  # one scan of the file per group, then the group's small table
            users = "readings_group"
            con.execute(
                "CREATE OR REPLACE TEMP TABLE readings_group AS SELECT * FROM readings "
                f"WHERE hash(user_id) % {buckets} = {bucket}"
            )
        for metric in BASELINE_METRICS:
            con.execute(
                "INSERT INTO anomalies SELECT source_row, user_id, event_time, ord, metric, "
                f"kind, severity, value, rule FROM ({baseline_anomalies_sql(users, (metric,))})"
            )


QUANTILES = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
STAT_ORDER = ("count", "mean", "std", "min", "p05", "p25", "median", "p75", "p95", "max")


def _quantiles(con: duckdb.DuckDBPyConnection, col: str) -> dict[str, float | None]:
    """quantile_cont of `col` (rank (n - 1) q, linear between neighbours), computed from
    the counts of its distinct values: a grouping, which spills to disk, instead of the
    holistic aggregate, which holds every value in memory."""
    qs = "[" + ", ".join(repr(q) for q in QUANTILES.values()) + "]"
    found = con.execute(
        f"WITH g AS (SELECT {col} AS x, count(*) AS n FROM readings WHERE {col} IS NOT NULL "
        "GROUP BY x), c AS (SELECT x, sum(n) OVER (ORDER BY x) - n AS first_i, "
        "sum(n) OVER (ORDER BY x) AS end_i FROM g), "
        f"k AS (SELECT q, (total - 1) * q AS rank FROM (SELECT sum(n) AS total FROM g), "
        f"unnest(CAST({qs} AS DOUBLE[])) u(q) WHERE total > 0) "
        "SELECT k.q, k.rank - floor(k.rank) AS d, a.x AS lo, b.x AS hi FROM k "
        "JOIN c a ON floor(k.rank) >= a.first_i AND floor(k.rank) < a.end_i "
        "JOIN c b ON ceil(k.rank) >= b.first_i AND ceil(k.rank) < b.end_i"
    ).fetchall()
    by_q = {float(q): lo + (hi - lo) * d if d else lo for q, d, lo, hi in found}
    return {name: by_q.get(q) for name, q in QUANTILES.items()}


def _metric_stats(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    for metric in VITAL_COLUMNS:
        col = quote_ident(metric)
        (row,) = _rows(
            con,
            f"SELECT count({col}) AS count, avg({col}) AS mean, stddev_samp({col}) AS std, "
            f"min({col}) AS min, max({col}) AS max FROM readings",
        )
        row = {**row, **_quantiles(con, col)}
        row = {k: row[k] for k in STAT_ORDER}
        hist = _rows(
            con,
            f"WITH b AS (SELECT min({col}) AS lo, max({col}) AS hi FROM readings) "
            f"SELECT least(CAST(floor(({col} - lo) / greatest((hi - lo) / {HISTOGRAM_BINS}, "
            f"1e-9)) AS INTEGER), {HISTOGRAM_BINS - 1}) AS bin, count(*) AS count, "
            f"any_value(lo) AS lo, any_value(hi) AS hi FROM readings, b "
            f"WHERE {col} IS NOT NULL GROUP BY bin ORDER BY bin",
        )
        row = _clean(row)
        if hist:
            lo, hi = float(hist[0]["lo"]), float(hist[0]["hi"])
            width = (hi - lo) / HISTOGRAM_BINS if hi > lo else 1.0
            counts = [0] * HISTOGRAM_BINS
            for h in hist:
                counts[int(h["bin"])] = int(h["count"])
            row["histogram"] = {
                "edges": [round(lo + i * width, 4) for i in range(HISTOGRAM_BINS + 1)],
                "counts": counts,
            }
        stats[metric] = row
    return stats


def _distributions(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    news2 = _rows(
        con,
        f"SELECT score, count(*) AS n FROM (SELECT {partial_news2_sql()} AS score FROM readings) "
        "GROUP BY score ORDER BY score",
    )
    bp = _rows(
        con,
        f"SELECT category, count(*) AS n FROM (SELECT {bp_category_sql()} AS category "
        "FROM readings) GROUP BY category ORDER BY n DESC",
    )
    dist = {int(r["score"]): int(r["n"]) for r in news2}
    return {
        "news2_partial": {
            "distribution": {str(k): v for k, v in dist.items()},
            "readings_score_5_or_more": sum(v for k, v in dist.items() if k >= 5),
            "readings_score_7_or_more": sum(v for k, v in dist.items() if k >= 7),
        },
        "bp_categories": {str(r["category"]): int(r["n"]) for r in bp},
    }


def _anomaly_summary(con: duckdb.DuckDBPyConnection, limits: AnalysisLimits) -> dict[str, Any]:
    def counts(col: str) -> dict[str, int]:
        return {
            str(r["k"]): int(r["n"])
            for r in _rows(
                con,
                f"SELECT {col} AS k, count(*) AS n FROM anomalies GROUP BY k ORDER BY n DESC, k",
            )
        }

    by_severity = {SEVERITY_NAMES[int(k)]: v for k, v in counts("severity").items()}
    top = _rows(
        con,
        "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule "
        "FROM anomalies ORDER BY severity DESC, event_time NULLS LAST, source_row, metric, rule "
        f"LIMIT {limits.top_anomalies}",
    )
    for row in top:
        row["severity"] = SEVERITY_NAMES[int(row["severity"])]
    timeline = _rows(
        con,
        "WITH b AS (SELECT min(event_time) AS lo, max(event_time) AS hi FROM anomalies) "
        "SELECT time_bucket(greatest(to_seconds(CAST(ceil(epoch(hi) - epoch(lo)) AS BIGINT) "
        f"// {TIMELINE_BUCKETS}), INTERVAL 1 MINUTE), event_time, lo) AS bucket, "
        "severity, count(*) AS n FROM anomalies, b WHERE event_time IS NOT NULL "
        "GROUP BY bucket, severity ORDER BY bucket, severity",
    )
    (total,) = con.execute("SELECT count(*) FROM anomalies").fetchone() or (0,)
    (readings,) = con.execute("SELECT count(DISTINCT source_row) FROM anomalies").fetchone() or (0,)
    return {
        "total": int(total),
        "readings_flagged": int(readings),
        "by_severity": by_severity,
        "by_kind": counts("kind"),
        "by_metric": counts("metric"),
        "by_rule": counts("rule"),
        "top": [_clean(r) for r in top],
        "timeline": [
            {
                "bucket": _iso(r["bucket"]),
                "severity": SEVERITY_NAMES[int(r["severity"])],
                "count": int(r["n"]),
            }
            for r in timeline
        ],
    }


def _episodes(con: duckdb.DuckDBPyConnection, limits: AnalysisLimits) -> dict[str, Any]:
    """Runs of consecutive abnormal readings; the peak is the worst value in the direction of
    the episode's kind (lowest for low SpO2, highest for tachycardia)."""
    low_kinds = ", ".join(quote_literal(k) for k in sorted(LOW_SIDE_KINDS))
    con.execute(
        "CREATE TEMP TABLE episodes AS "
        "WITH flagged AS (SELECT DISTINCT ON (user_id, metric, ord) user_id, metric, ord, "
        "event_time, value, kind, severity FROM anomalies WHERE rule <> 'baseline' "
        "ORDER BY user_id, metric, ord, severity DESC), "
        "runs AS (SELECT *, ord - row_number() OVER (PARTITION BY user_id, metric ORDER BY ord) "
        "AS run FROM flagged) "
        "SELECT * EXCLUDE (low, high), "
        f"CASE WHEN kind IN ({low_kinds}) THEN low ELSE high END AS peak_value FROM ("
        "SELECT user_id, metric, mode(kind ORDER BY severity DESC, kind) AS kind, "
        "max(severity) AS severity, "
        "count(*) AS readings, min(event_time) AS start_time, max(event_time) AS end_time, "
        "min(value) AS low, max(value) AS high FROM runs "
        f"GROUP BY user_id, metric, run HAVING count(*) >= {MIN_EPISODE_READINGS})"
    )
    (total,) = con.execute("SELECT count(*) FROM episodes").fetchone() or (0,)
    listed = _rows(
        con,
        "SELECT user_id, metric, kind, severity, readings, start_time, end_time, peak_value, "
        "epoch(end_time) - epoch(start_time) AS duration_s FROM episodes "
        f"ORDER BY severity DESC, readings DESC, start_time LIMIT {limits.top_episodes}",
    )
    for row in listed:
        row["severity"] = SEVERITY_NAMES[int(row["severity"])]
    by_kind = {
        str(r["kind"]): int(r["n"])
        for r in _rows(
            con, "SELECT kind, count(*) AS n FROM episodes GROUP BY kind ORDER BY n DESC, kind"
        )
    }
    return {"total": int(total), "by_kind": by_kind, "list": [_clean(r) for r in listed]}


def _users(con: duckdb.DuckDBPyConnection, limits: AnalysisLimits) -> dict[str, Any]:
    rows = _rows(
        con,
        "WITH r AS (SELECT user_id, count(*) AS readings FROM readings GROUP BY user_id), "
        "a AS (SELECT user_id, count(*) AS anomalies, "
        "count(*) FILTER (WHERE severity = 3) AS high, "
        "count(*) FILTER (WHERE severity = 2) AS medium, "
        "count(*) FILTER (WHERE severity = 1) AS low, max(severity) AS worst "
        "FROM anomalies GROUP BY user_id), "
        "e AS (SELECT user_id, count(*) AS episodes FROM episodes GROUP BY user_id) "
        "SELECT r.user_id, r.readings, coalesce(a.anomalies, 0) AS anomalies, "
        "coalesce(a.high, 0) AS high, coalesce(a.medium, 0) AS medium, "
        "coalesce(a.low, 0) AS low, coalesce(e.episodes, 0) AS episodes, "
        "coalesce(a.worst, 0) AS worst, "
        "round((3 * coalesce(a.high, 0) + 2 * coalesce(a.medium, 0) + coalesce(a.low, 0)) "
        "/ r.readings, 4) AS risk_score "
        "FROM r LEFT JOIN a USING (user_id) LEFT JOIN e USING (user_id) "
        f"ORDER BY risk_score DESC, worst DESC, r.user_id LIMIT {limits.top_users}",
    )
    (total,) = con.execute("SELECT count(DISTINCT user_id) FROM readings").fetchone() or (0,)
    (flagged,) = con.execute("SELECT count(DISTINCT user_id) FROM anomalies").fetchone() or (0,)
    for row in rows:
        row["worst"] = SEVERITY_NAMES.get(int(row["worst"]), "none")
    return {"total": int(total), "flagged": int(flagged), "top": [_clean(r) for r in rows]}


def analyze_parquet(
    parquet: Path,
    anomalies_out: Path,
    *,
    limits: EngineLimits,
    analysis_limits: AnalysisLimits | None = None,
) -> dict[str, Any]:
    """Compute the bounded facts of one dataset and write every anomaly to `anomalies_out`."""
    top = analysis_limits or AnalysisLimits()
    con = connect(limits)
    try:
        _load(con, parquet)
        (readings, first, last) = con.execute(
            "SELECT count(*), min(event_time), max(event_time) FROM readings"
        ).fetchone() or (0, None, None)
        facts: dict[str, Any] = {
            "readings": int(readings),
            "time_range": {"start": _iso(first), "end": _iso(last)},
            "metrics": _metric_stats(con),
            **_distributions(con),
            "anomalies": _anomaly_summary(con, top),
            "episodes": _episodes(con, top),
            "users": _users(con, top),
        }
        con.execute(
            "COPY (SELECT source_row, user_id, event_time, metric, kind, severity, value, rule "
            "FROM anomalies ORDER BY user_id, event_time, source_row, metric, rule) "
            f"TO {quote_literal(str(anomalies_out))} (FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()
    return facts
