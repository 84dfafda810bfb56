"""Statistics of the valid readings: per-metric moments, quantiles and histograms, and the
partial NEWS2 and BP-category distributions. Three aggregate scans of the file, one of them
counting each distinct value per user (a table the size of the value grid, not of the
file), which the baselines read too."""

from __future__ import annotations

from typing import Any

import duckdb

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.dataops.analysis.common import clean, fetch_rows, grouping_id, iso
from healthpipe.domain.anomaly_sql import (
    BASELINE_METRICS,
    bp_category_sql,
    partial_news2_sql,
    quantiles_from_counts_sql,
    red_score_sql,
)
from healthpipe.domain.validation_sql import quote_ident, quote_literal

HISTOGRAM_BINS = 24


def scan_counts(con: duckdb.DuckDBPyConnection, src: str) -> dict[str, Any]:
    """Three scans of the file, each a cheap aggregate. Readings, time range and per-metric
    moments; the partial NEWS2 and BP-category distributions (`scores`); and
    `value_counts` (metric, user_id, x, n): how many readings of each user have each value of
    each vital with a baseline (x NULL: missing), and of steps over all users (user_id NULL).
    """
    agg = file_aggregates(con, src)
    count_values(con, src)
    return agg


def file_aggregates(con: duckdb.DuckDBPyConnection, src: str) -> dict[str, Any]:
    """The first two scans of `scan_counts`: readings, time range and per-metric moments,
    and `scores` (the partial NEWS2 and BP-category distributions). Bounded memory: the
    participant-group analysis (`buckets`) runs them over the whole file."""
    parts = ["count(*) AS readings", "min(event_time) AS first", "max(event_time) AS last"]
    for i, metric in enumerate(VITAL_COLUMNS):
        col = quote_ident(metric)
        parts += [
            f"count({col}) AS count_{i}",
            f"avg({col}) AS mean_{i}",
            f"stddev_samp({col}) AS std_{i}",
            f"min({col}) AS min_{i}",
            f"max({col}) AS max_{i}",
        ]
    (agg,) = fetch_rows(con, f"SELECT {', '.join(parts)} FROM {src}")
    agg["scores"] = con.execute(
        f"SELECT news2, bp, red, count(*) FROM (SELECT {partial_news2_sql()} AS news2, "
        f"{bp_category_sql()} AS bp, coalesce({red_score_sql()}, FALSE) AS red "
        f"FROM {src}) GROUP BY ALL"
    ).fetchall()
    return agg


def count_values(con: duckdb.DuckDBPyConnection, src: str) -> None:
    """The third scan of `scan_counts`: table `value_counts`."""
    per_user = [m for m in VITAL_COLUMNS if m in BASELINE_METRICS]
    others = [m for m in VITAL_COLUMNS if m not in BASELINE_METRICS]
    if VITAL_COLUMNS[0] not in per_user:
        raise ValueError("readings per user are counted on the first vital, with a baseline")
    sets = [f"(user_id, {quote_ident(m)})" for m in per_user] + [
        f"({quote_ident(m)})" for m in others
    ]
    columns = ["user_id", *VITAL_COLUMNS]

    con.execute(
        f"CREATE TEMP TABLE grouped AS SELECT grouping_id({', '.join(columns)}) AS gid, "
        f"{', '.join(quote_ident(c) for c in columns)}, count(*) AS n FROM {src} "
        f"GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    con.execute(
        "CREATE TEMP TABLE value_counts AS "
        + " UNION ALL ".join(
            f"SELECT {quote_literal(m)} AS metric, "
            f"{'user_id' if m in per_user else 'CAST(NULL AS VARCHAR)'} AS user_id, "
            f"{quote_ident(m)} AS x, n FROM grouped "
            f"WHERE gid = {grouping_id(columns, ('user_id', m) if m in per_user else (m,))}"
            for m in VITAL_COLUMNS
        )
    )
    con.execute("DROP TABLE grouped")


QUANTILES = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
STAT_ORDER = ("count", "mean", "std", "min", "p05", "p25", "median", "p75", "p95", "max")


def metric_stats(con: duckdb.DuckDBPyConnection, agg: dict[str, Any]) -> dict[str, Any]:
    """Per-metric statistics: moments from the aggregate, quantiles and histograms from
    `value_counts`."""
    con.execute(
        "CREATE TEMP TABLE metric_counts AS SELECT metric, x, sum(n) AS n FROM value_counts "
        "WHERE x IS NOT NULL GROUP BY metric, x"
    )
    # rank (n - 1) q, linear between neighbours: lo + (hi - lo) d
    found = con.execute(
        "SELECT metric, q, lo, hi, d FROM "
        f"({quantiles_from_counts_sql('metric_counts', ('metric',), tuple(QUANTILES.values()))})"
    ).fetchall()
    by_q = {(m, float(q)): lo + (hi - lo) * d if d else lo for m, q, lo, hi, d in found}
    hist = fetch_rows(
        con,
        "WITH b AS (SELECT metric, min(x) AS lo, max(x) AS hi FROM metric_counts "
        "GROUP BY metric) "
        f"SELECT metric, least(CAST(floor((x - lo) / greatest((hi - lo) / {HISTOGRAM_BINS}, "
        f"1e-9)) AS INTEGER), {HISTOGRAM_BINS - 1}) AS bin, sum(n) AS count, "
        "any_value(lo) AS lo, any_value(hi) AS hi FROM metric_counts JOIN b USING (metric) "
        "GROUP BY metric, bin ORDER BY metric, bin",
    )
    stats: dict[str, dict[str, Any]] = {}
    for i, metric in enumerate(VITAL_COLUMNS):
        row: dict[str, Any] = {k: agg[f"{k}_{i}"] for k in ("count", "mean", "std", "min", "max")}
        row |= {name: by_q.get((metric, q)) for name, q in QUANTILES.items()}
        row = clean({k: row[k] for k in STAT_ORDER})
        bins = [h for h in hist if h["metric"] == metric]
        if bins:
            lo, hi = float(bins[0]["lo"]), float(bins[0]["hi"])
            width = (hi - lo) / HISTOGRAM_BINS if hi > lo else 1.0
            counts = [0] * HISTOGRAM_BINS
            for h in bins:
                counts[int(h["bin"])] = int(h["count"])
            row["histogram"] = {
                "edges": [round(lo + i * width, 4) for i in range(HISTOGRAM_BINS + 1)],
                "counts": counts,
            }
        stats[metric] = row
    return {
        "readings": int(agg["readings"]),
        "time_range": {"start": iso(agg["first"]), "end": iso(agg["last"])},
        "metrics": stats,
    }


def distributions(agg: dict[str, Any]) -> dict[str, Any]:
    dist: dict[int, int] = {}
    bp: dict[str, int] = {}
    red = 0
    for score, category, has_red, n in agg["scores"]:
        dist[int(score)] = dist.get(int(score), 0) + int(n)
        bp[str(category)] = bp.get(str(category), 0) + int(n)
        red += int(n) if has_red else 0
    return {
        "news2_partial": {
            "distribution": {str(k): v for k, v in sorted(dist.items())},
            "readings_score_5_or_more": sum(v for k, v in dist.items() if k >= 5),
            "readings_score_7_or_more": sum(v for k, v in dist.items() if k >= 7),
            # readings where one parameter scores 3 (a red score: urgent review on its own)
            "readings_with_red_score": red,
        },
        "bp_categories": dict(sorted(bp.items(), key=lambda item: (-item[1], item[0]))),
    }
