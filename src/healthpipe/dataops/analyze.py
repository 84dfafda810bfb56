"""Statistics, anomalies and episodes over a processed Parquet file, in DuckDB SQL.

Returns bounded facts (sizes do not grow with the file): per-metric statistics and histograms,
NEWS2 and BP-category distributions, anomaly counts, the top anomalies, episodes and per-user
risk rows. The full anomaly list is written to a Parquet file next to the analysis.

Memory stays flat as the file grows. The Parquet file is read where it lies, never copied
into a table. Statistics, distributions, quantiles and the per-user baselines (median, MAD)
come from three aggregate scans, one of them counting each distinct value per user (a table
the size of the value grid, not of the file). Anomalies and episodes need each user's
readings in time order: they are found over groups of whole users of a bounded number of
readings (one sort each; how a reading is abnormal is coded in one BIGINT before it), written
as narrow Parquet parts and joined, named, into the anomaly file at the end.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from healthpipe.constants import VITAL_COLUMNS
from healthpipe.dataops.engine import EngineLimits, connect
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import (
    ANOMALY_ITEMS,
    BASELINE_METRICS,
    BASELINE_STATS,
    DIRECTION_CODES,
    anomaly_code_sql,
    baseline_column,
    baselines_sql,
    bp_category_sql,
    bp_items,
    bp_trigger_sql,
    clinical_code_mask,
    clinical_items,
    heart_rate_items,
    item_band_sql,
    item_direction_code_sql,
    item_kind_sql,
    item_metric_sql,
    item_rule_sql,
    item_severity_sql,
    item_values_sql,
    news2_score_sql,
    quantiles_from_counts_sql,
    red_score_sql,
)
from healthpipe.domain.episodes import MIN_EPISODE_READINGS
from healthpipe.domain.validation_sql import FORMULA_START_CHARS, quote_ident, quote_literal

HISTOGRAM_BINS = 24
TOP_ANOMALIES = 50
TOP_EPISODES = 100
TOP_USERS = 25
TIMELINE_BUCKETS = 48
SEVERITY_NAMES = {1: "low", 2: "medium", 3: "high"}
# Anomalies and episodes run over groups of whole users of about this many readings per MB
# of the engine's memory limit (a group's readings are sorted in memory, with its anomalies).
READINGS_PER_MB = 4000
MIN_READINGS_PER_GROUP = 50_000


@dataclass(frozen=True)
class AnalysisLimits:
    """How much the analysis lists, and its clinical context settings: the gap that breaks
    an episode (`episode_gap_seconds`) and the steps above which a reading is during
    activity (`activity_steps_above`)."""

    top_anomalies: int = TOP_ANOMALIES
    top_episodes: int = TOP_EPISODES
    top_users: int = TOP_USERS
    episode_gap_seconds: float = cl.EPISODE_GAP_SECONDS
    activity_steps_above: float = cl.ACTIVITY_STEPS_ABOVE


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


def _scan_counts(con: duckdb.DuckDBPyConnection, src: str) -> dict[str, Any]:
    """Three scans of the file, each a cheap aggregate. Readings, time range and per-metric
    moments; the partial NEWS2 and BP-category distributions (`scores`); and
    `value_counts` (metric, user_id, x, n): how many readings of each user have each value of
    each vital with a baseline (x NULL: missing), and of steps over all users (user_id NULL).
    """
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
    (agg,) = _rows(con, f"SELECT {', '.join(parts)} FROM {src}")
    news2 = " + ".join(f"({news2_score_sql(p.metric)})" for p in cl.NEWS2_PARAMETERS)
    agg["scores"] = con.execute(
        f"SELECT news2, bp, red, count(*) FROM (SELECT {news2} AS news2, "
        f"{bp_category_sql()} AS bp, coalesce({red_score_sql()}, FALSE) AS red "
        f"FROM {src}) GROUP BY ALL"
    ).fetchall()
    per_user = [m for m in VITAL_COLUMNS if m in BASELINE_METRICS]
    others = [m for m in VITAL_COLUMNS if m not in BASELINE_METRICS]
    if VITAL_COLUMNS[0] not in per_user:
        raise ValueError("readings per user are counted on the first vital, with a baseline")
    sets = [f"(user_id, {quote_ident(m)})" for m in per_user] + [
        f"({quote_ident(m)})" for m in others
    ]
    columns = ["user_id", *VITAL_COLUMNS]

    def gid(*grouped: str) -> int:  # grouping_id: bit set for each column not grouped
        return int("".join("0" if c in grouped else "1" for c in columns), 2)

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
            f"WHERE gid = {gid('user_id', m) if m in per_user else gid(m)}"
            for m in VITAL_COLUMNS
        )
    )
    con.execute("DROP TABLE grouped")
    return agg


QUANTILES = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
STAT_ORDER = ("count", "mean", "std", "min", "p05", "p25", "median", "p75", "p95", "max")


def _metric_stats(con: duckdb.DuckDBPyConnection, agg: dict[str, Any]) -> dict[str, Any]:
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
    hist = _rows(
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
        row = _clean({k: row[k] for k in STAT_ORDER})
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
        "time_range": {"start": _iso(agg["first"]), "end": _iso(agg["last"])},
        "metrics": stats,
    }


def _distributions(agg: dict[str, Any]) -> dict[str, Any]:
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


def _users_table(con: duckdb.DuckDBPyConnection) -> None:
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


def _user_groups(con: duckdb.DuckDBPyConnection, readings_per_group: int) -> list[str]:
    """Filters on user_id that split the users, in user order, into groups of about
    `readings_per_group` readings (a user is never split; one group needs no filter)."""
    users = con.execute("SELECT user_id, readings FROM users ORDER BY uid").fetchall()
    groups: list[list[str | None]] = [[]]
    size = 0
    for user, readings in users:
        if size and size + int(readings) > readings_per_group:
            groups.append([])
            size = 0
        groups[-1].append(user)
        size += int(readings)
    if len(groups) == 1:
        return ["TRUE"]
    filters = []
    for group in groups:
        named = [u for u in group if u is not None]
        terms = ["r.user_id IS NULL"] if len(named) < len(group) else []
        if named:
            terms.append(
                f"r.user_id BETWEEN {quote_literal(named[0])} AND {quote_literal(named[-1])}"
            )
        filters.append("(" + " OR ".join(terms) + ")")
    return filters


# Reading flags (bits of `flags` in the anomaly rows of a group).
CONFLICTING_BIT = 1  # a conflicting reading (rejected as `conflicting_reading`), scored anyway
ACTIVITY_BIT = 2  # steps above the threshold in the reading or the user's one just before
CLINICAL_BIT = 4  # the reading has a NEWS2 or ACC/AHA finding
# the reading is not within the episode gap of the user's reading before (or is the
# user's first, or a time is missing): no episode runs across it
BREAK_BIT = 8


def _in(items: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, items or (-1,))) + ")"


def _group_anomalies_sql(src: str, where: str, limits: AnalysisLimits) -> str:
    """The anomalies of one group of users in (user, time, metric, rule) order: uid, ord (the
    reading's place in the group's readings in user, time order), source_row, event_time,
    item (of ANOMALY_ITEMS), band (of the item), severity (heart-rate findings during
    activity capped at low below NEWS2 3), flags (CONFLICTING_BIT, ACTIVITY_BIT,
    CLINICAL_BIT, BREAK_BIT), value, and the pair sbp/dbp on blood-pressure items. Whether
    and how a reading is abnormal is worked out before the sort, in one BIGINT; only the
    readings it flags are unnested after. The activity threshold and the episode gap are
    those of `limits`. Needs preserve_insertion_order (one sort, then
    streaming operators, the window included, that keep its order).
    """
    used = sorted({i.column for i in ANOMALY_ITEMS} | {"systolic_bp", "diastolic_bp"})
    vitals = ", ".join(f"r.{quote_ident(m)}" for m in used)
    baselines = ", ".join(
        f"u.{baseline_column(stat, m)}" for m in BASELINE_METRICS for stat in BASELINE_STATS
    )
    coded = (
        f"SELECT uid, source_row, event_time, {', '.join(quote_ident(m) for m in used)}, "
        f"steps, conflicting, {anomaly_code_sql()} AS code FROM (SELECT u.uid, r.source_row, "
        f"r.event_time, {vitals}, r.steps, r.conflicting, {baselines} FROM {src} r "
        f"JOIN users u ON u.user_id IS NOT DISTINCT FROM r.user_id WHERE {where}) "
        "ORDER BY uid, event_time NULLS LAST, source_row"
    )
    steps = float(limits.activity_steps_above)
    since = "(epoch(event_time) - epoch(prev_time))"
    within = float(cl.ACTIVITY_PREVIOUS_WITHIN_SECONDS)
    flags = (
        f"(CASE WHEN conflicting THEN {CONFLICTING_BIT} ELSE 0 END) | (CASE WHEN steps > {steps!r} "
        f"OR (prev_uid = uid AND prev_steps > {steps!r} AND {since} <= {within!r}) "
        f"THEN {ACTIVITY_BIT} ELSE 0 END) | "
        f"(CASE WHEN (code & {clinical_code_mask()}) <> 0 THEN {CLINICAL_BIT} ELSE 0 END) | "
        f"(CASE WHEN prev_uid = uid AND {since} <= {float(limits.episode_gap_seconds)!r} THEN 0 "
        f"ELSE {BREAK_BIT} END)"
    )
    band = item_band_sql("code", "item")
    severity = item_severity_sql("item", "band")
    return (
        "SELECT uid, ord, source_row, event_time, item, band, CAST(CASE WHEN item IN "
        f"{_in(heart_rate_items())} AND (flags & {ACTIVITY_BIT}) <> 0 AND {severity} < 3 "
        f"THEN least({severity}, 1) ELSE {severity} END AS UTINYINT) AS severity, "
        "CAST(flags AS UTINYINT) AS flags, value, "
        f"CASE WHEN item IN {_in(bp_items())} THEN systolic_bp END AS sbp, "
        f"CASE WHEN item IN {_in(bp_items())} THEN diastolic_bp END AS dbp FROM ("
        f"SELECT uid, ord, source_row, event_time, CAST(item AS UTINYINT) AS item, "
        f"CAST({band} AS UTINYINT) AS band, flags, value, systolic_bp, diastolic_bp FROM ("
        "SELECT uid, ord, source_row, event_time, code, systolic_bp, diastolic_bp, "
        f"{flags} AS flags, unnest(range({len(ANOMALY_ITEMS)})) AS item, "
        f"unnest({item_values_sql()}) AS value FROM ("
        "SELECT *, row_number() OVER () AS ord, lag(steps) OVER () AS prev_steps, "
        "lag(uid) OVER () AS prev_uid, lag(event_time) OVER () AS prev_time "
        f"FROM ({coded})) WHERE code <> 0) WHERE {band} > 0)"
    )


def _decorated_sql(anomalies: str) -> str:
    """The anomaly rows as written: metric, kind and rule by name, the user by id, the BP
    pair and the part of it that triggered the category, and the reading's flags."""
    named = (
        f"SELECT a.source_row, users[a.uid] AS user_id, a.event_time, "
        f"{item_metric_sql('a.item')} AS metric, {item_kind_sql('a.item', 'a.band')} AS kind, "
        f"CAST(a.severity AS INTEGER) AS severity, a.value, {item_rule_sql('a.item')} AS rule, "
        "a.sbp AS systolic_bp, a.dbp AS diastolic_bp, a.flags FROM "
        f"{anomalies} a, (SELECT list(user_id ORDER BY uid) AS users FROM users)"
    )
    return (
        "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule, "
        "systolic_bp, diastolic_bp, CASE WHEN rule = 'acc_aha' THEN "
        f"{bp_trigger_sql('kind', 'systolic_bp', 'diastolic_bp')} END AS bp_trigger, "
        f"(flags & {ACTIVITY_BIT}) <> 0 AS during_activity, "
        f"(flags & {CONFLICTING_BIT}) <> 0 AS conflicting, "
        f"(flags & {CLINICAL_BIT}) <> 0 AS with_clinical_finding FROM ({named})"
    )


def _episodes_sql(anomalies: str) -> str:
    """Runs of consecutive abnormal readings (consecutive `ord`) of one user for one vital
    in one direction, broken where consecutive readings are more than the episode gap
    apart (or a time is missing: BREAK_BIT); heart-rate findings during activity below
    NEWS2 3 take no part. The kind and the worst value are those of the worst reading: the
    most severe, then the most extreme in the run's direction (lowest for low kinds, highest
    for high ones; systolic for blood pressure), then the earliest.

    For each clinical item, its findings sorted by `ord` (one number) go through streaming
    windows: a finding starts a run when it breaks, or the one before is not the reading
    before or is in the other direction; its run is the last start so far (a running max of
    `ord`; `ord` is numbered over the whole group and a user's first reading breaks). Then
    one aggregate of plain numbers per run and one join for the worst reading's fields. (A
    window partitioned by user and item sorted the same rows 3-4 times slower.)"""
    low = DIRECTION_CODES["low"]
    # the worst reading as one BIGINT: severity in bits 61-62, the value signed by direction
    # in hundredths (clamped; a missing value, such as the systolic of a crisis found on the
    # diastolic, below any other) in bits 35-60, and the reverse of `ord` below, so ties go
    # to the earliest reading (and the worst reading's `ord` can be read back from the key)
    cap = (1 << 25) - 1
    ords = (1 << 35) - 1
    signed = f"round((CASE WHEN dir = {low} THEN -value ELSE value END) * 100)"
    key = (
        f"((CAST(severity AS BIGINT) << 61) | ((CAST(CASE WHEN value IS NULL THEN -{cap} "
        f"ELSE greatest(least({signed}, {cap}), {1 - cap}) END AS BIGINT) + {cap + 1}) << 35) "
        f"| ({ords} - ord))"
    )
    heart_rate = set(heart_rate_items())
    per_item = []
    for n in clinical_items():
        eligible = (
            f" AND NOT ((flags & {ACTIVITY_BIT}) <> 0 AND severity < 3)" if n in heart_rate else ""
        )
        findings = (
            f"SELECT ord, event_time, value, severity, flags, "
            f"{item_direction_code_sql('item', 'band')} AS dir FROM {anomalies} "
            f"WHERE item = {n}{eligible} ORDER BY ord"
        )
        previous = (
            f"SELECT *, lag(ord) OVER () AS prev_ord, lag(dir) OVER () AS prev_dir "
            f"FROM ({findings})"
        )
        per_item.append(
            f"SELECT {n} AS item, dir, event_time, {key} AS worst_key, max(CASE WHEN "
            f"(flags & {BREAK_BIT}) <> 0 OR prev_ord IS DISTINCT FROM ord - 1 "
            "OR prev_dir IS DISTINCT FROM dir THEN ord END) "
            f"OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run FROM ({previous})"
        )
    return (
        "WITH runs AS (SELECT item, any_value(dir) AS dir, count(*) AS readings, "
        "max(worst_key) AS worst_key, min(event_time) AS start_time, "
        f"max(event_time) AS end_time FROM ({' UNION ALL '.join(per_item)}) "
        f"GROUP BY item, run HAVING count(*) >= {MIN_EPISODE_READINGS}) "
        f"SELECT u.user_id, {item_metric_sql('a.item')} AS metric, "
        f"{item_kind_sql('a.item', 'a.band')} AS kind, a.severity, e.readings, e.start_time, "
        "e.end_time, a.value AS peak_value, "
        f"CASE WHEN e.dir = {low} THEN 'low' ELSE 'high' END AS direction, "
        f"CASE WHEN e.dir = {low} THEN 'lowest' ELSE 'highest' END AS worst, "
        "a.sbp AS worst_systolic_bp, a.dbp AS worst_diastolic_bp, a.event_time AS worst_time "
        f"FROM runs e JOIN {anomalies} a ON a.item = e.item "
        f"AND a.ord = {ords} - (e.worst_key & {ords}) JOIN users u ON u.uid = a.uid"
    )


def _find_anomalies(
    con: duckdb.DuckDBPyConnection,
    src: str,
    anomalies_out: Path,
    limits: EngineLimits,
    tmp: Path,
    analysis: AnalysisLimits,
) -> tuple[int, list[Path]]:
    """Fill `episodes` and write every anomaly, one group of users at a time: to
    `anomalies_out` when there is one group, else to narrow parts in `tmp` (in order) that
    `_join_parts` makes into it. Returns the number of readings flagged and the parts."""
    per_group = max(MIN_READINGS_PER_GROUP, limits.memory_limit_mb * READINGS_PER_MB)
    filters = _user_groups(con, per_group)
    flagged = 0
    parts: list[Path] = []
    for number, where in enumerate(filters):
        con.execute("SET preserve_insertion_order = true")
        group_sql = _group_anomalies_sql(src, where, analysis)
        con.execute(f"CREATE OR REPLACE TEMP TABLE group_anomalies AS {group_sql}")
        if len(filters) == 1:
            con.execute(
                f"COPY ({_decorated_sql('group_anomalies')}) TO "
                f"{quote_literal(str(anomalies_out))} (FORMAT parquet, COMPRESSION zstd)"
            )
        else:
            parts.append(tmp / f"part-{number:05d}.parquet")
            con.execute(
                "COPY (SELECT uid, source_row, event_time, item, band, severity, flags, value, "
                f"sbp, dbp FROM group_anomalies) TO {quote_literal(str(parts[-1]))} "
                "(FORMAT parquet, COMPRESSION uncompressed)"
            )
        verb = "INSERT INTO episodes" if number else "CREATE TEMP TABLE episodes AS"
        con.execute(f"{verb} {_episodes_sql('group_anomalies')}")  # streaming windows: in order
        con.execute("SET preserve_insertion_order = false")
        (count,) = con.execute("SELECT count(DISTINCT ord) FROM group_anomalies").fetchone() or (0,)
        flagged += int(count)
        con.execute("DROP TABLE group_anomalies")
    return flagged, parts


def _parts_sql(parts: list[Path]) -> str:
    return "read_parquet([" + ", ".join(quote_literal(str(p)) for p in parts) + "])"


def _join_parts(cursor: duckdb.DuckDBPyConnection, parts: list[Path], out: Path) -> None:
    """The parts, named, as one file in order. On one thread: with two, row groups wait in
    memory for their turn; the summaries run on the other core meanwhile."""
    try:
        (threads,) = cursor.execute("SELECT current_setting('threads')").fetchone() or (1,)
        cursor.execute("SET preserve_insertion_order = true")
        cursor.execute("SET threads = 1")
        try:
            cursor.execute(
                f"COPY ({_decorated_sql(_parts_sql(parts))}) TO {quote_literal(str(out))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            cursor.execute(f"SET threads = {int(threads)}")
    finally:
        cursor.close()


def _anomaly_summary(
    con: duckdb.DuckDBPyConnection, limits: AnalysisLimits, readings_flagged: int
) -> dict[str, Any]:
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
        "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule, "
        "systolic_bp, diastolic_bp, bp_trigger, during_activity, conflicting, "
        "with_clinical_finding FROM anomalies "
        "ORDER BY severity DESC, event_time NULLS LAST, source_row, metric, rule "
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
    (total, with_clinical, active, conflicting) = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE rule = 'baseline' AND with_clinical_finding), "
        "count(*) FILTER (WHERE during_activity AND metric = 'heart_rate'), "
        "count(*) FILTER (WHERE conflicting) FROM anomalies"
    ).fetchone() or (0, 0, 0, 0)
    return {
        "total": int(total),
        "readings_flagged": readings_flagged,
        # baseline findings on readings that already have a clinical finding (not a second
        # headline finding), heart-rate findings during activity, findings of conflicting
        # readings
        "baseline_with_clinical_finding": int(with_clinical or 0),
        "heart_rate_during_activity": int(active or 0),
        "conflicting": int(conflicting or 0),
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
    (total,) = con.execute("SELECT count(*) FROM episodes").fetchone() or (0,)
    listed = _rows(
        con,
        "SELECT user_id, metric, kind, severity, readings, start_time, end_time, peak_value, "
        "epoch(end_time) - epoch(start_time) AS duration_s, direction, worst, "
        "peak_value AS worst_value, worst_systolic_bp, worst_diastolic_bp, worst_time "
        "FROM episodes "
        "ORDER BY severity DESC, readings DESC, start_time, user_id, metric "
        f"LIMIT {limits.top_episodes}",
    )
    for row in listed:
        row["severity"] = SEVERITY_NAMES[int(row["severity"])]
    by_kind = {
        str(r["kind"]): int(r["n"])
        for r in _rows(
            con, "SELECT kind, count(*) AS n FROM episodes GROUP BY kind ORDER BY n DESC, kind"
        )
    }
    # the longest of the whole file (the list holds the most severe): the analyst quotes it
    longest = _rows(
        con,
        "SELECT user_id, metric, kind, severity, readings, start_time, end_time, peak_value, "
        "epoch(end_time) - epoch(start_time) AS duration_s, worst FROM episodes "
        "ORDER BY readings DESC, duration_s DESC, start_time, user_id, metric LIMIT 1",
    )
    for row in longest:
        row["severity"] = SEVERITY_NAMES[int(row["severity"])]
    return {
        "total": int(total),
        "by_kind": by_kind,
        "list": [_clean(r) for r in listed],
        "longest": _clean(longest[0]) if longest else None,
    }


def _users(con: duckdb.DuckDBPyConnection, limits: AnalysisLimits) -> dict[str, Any]:
    rows = _rows(
        con,
        "WITH r AS (SELECT user_id, readings FROM users), "
        "a AS (SELECT user_id, count(*) AS anomalies, "
        "count(*) FILTER (WHERE severity = 3) AS high, "
        "count(*) FILTER (WHERE severity = 2) AS medium, "
        "count(*) FILTER (WHERE severity = 1) AS low, max(severity) AS worst, "
        "count(DISTINCT source_row) FILTER (WHERE NOT conflicting) AS readings_flagged "
        "FROM anomalies GROUP BY user_id), "
        "e AS (SELECT user_id, count(*) AS episodes FROM episodes GROUP BY user_id) "
        "SELECT r.user_id, r.readings, coalesce(a.anomalies, 0) AS anomalies, "
        "coalesce(a.high, 0) AS high, coalesce(a.medium, 0) AS medium, "
        "coalesce(a.low, 0) AS low, coalesce(e.episodes, 0) AS episodes, "
        "coalesce(a.worst, 0) AS worst, coalesce(a.readings_flagged, 0) AS readings_flagged, "
        "round(100.0 * coalesce(a.readings_flagged, 0) / r.readings, 1) AS flagged_pct, "
        "round((3 * coalesce(a.high, 0) + 2 * coalesce(a.medium, 0) + coalesce(a.low, 0)) "
        "/ r.readings, 4) AS risk_score "
        "FROM r LEFT JOIN a USING (user_id) LEFT JOIN e USING (user_id) "
        # severity first: every participant with a high finding leads, whatever the rate
        "ORDER BY worst DESC, high DESC, medium DESC, anomalies DESC, risk_score DESC, "
        f"r.user_id LIMIT {limits.top_users}",
    )
    (total,) = con.execute("SELECT count(user_id) FROM users").fetchone() or (0,)
    (flagged,) = con.execute("SELECT count(DISTINCT user_id) FROM anomalies").fetchone() or (0,)
    for row in rows:
        row["worst"] = SEVERITY_NAMES.get(int(row["worst"]), "none")
    return {"total": int(total), "flagged": int(flagged), "top": [_clean(r) for r in rows]}


CONFLICTING_REASON = "conflicting_reading"


def _unescaped_cell_sql(col: str) -> str:
    """A rejected-CSV text cell as ingest read it: without the `'` put before a formula."""
    return (
        f"trim(CASE WHEN left({col}, 1) = chr(39) AND length({col}) > 1 "
        f"AND contains({FORMULA_START_CHARS}, substr({col}, 2, 1)) THEN substr({col}, 2) "
        f"ELSE {col} END)"
    )


def _conflicting_rows(con: duckdb.DuckDBPyConnection, rejected_csv: Path) -> int:
    """Table `conflicting`: the rows of the rejected CSV whose only reason is
    CONFLICTING_REASON (the same participant and instant as a kept reading, other values),
    typed as the processed readings. Returns their number."""
    vitals = ", ".join(
        f"TRY_CAST(trim({quote_ident(m)}) AS DOUBLE) AS {quote_ident(m)}" for m in VITAL_COLUMNS
    )
    con.execute(
        "CREATE TEMP TABLE conflicting AS SELECT CAST(source_row AS BIGINT) AS source_row, "
        f"{_unescaped_cell_sql('user_id')} AS user_id, "
        f"TRY_CAST(trim(event_time) AS TIMESTAMPTZ) AS event_time, {vitals} "
        f"FROM read_csv({quote_literal(str(rejected_csv))}, header = true, all_varchar = true) "
        f"WHERE reject_reason = {quote_literal(CONFLICTING_REASON)}"
    )
    (count,) = con.execute("SELECT count(*) FROM conflicting").fetchone() or (0,)
    return int(count)


def _readings_sql(parquet: str, with_conflicting: bool) -> str:
    """The readings anomalies are found in: the processed ones, and the conflicting ones
    (flagged `conflicting`) when there are any."""
    names = ("source_row", "user_id", "event_time", *VITAL_COLUMNS)
    columns = ", ".join(quote_ident(c) for c in names)
    processed = f"SELECT {columns}, FALSE AS conflicting FROM {parquet}"
    if not with_conflicting:
        return f"({processed})"
    return f"({processed} UNION ALL SELECT {columns}, TRUE AS conflicting FROM conflicting)"


def analyze_parquet(
    parquet: Path,
    anomalies_out: Path,
    *,
    limits: EngineLimits,
    analysis_limits: AnalysisLimits | None = None,
    rejected_csv: Path | None = None,
) -> dict[str, Any]:
    """Compute the bounded facts of one dataset and write every anomaly to `anomalies_out`.

    With `rejected_csv` (ingest's rejected rows), the rows rejected as `conflicting_reading`
    are scored too: their findings are in the anomaly file, the summaries and episodes,
    flagged `conflicting`; they are not in the statistics, distributions or baselines, which
    describe the valid readings."""
    top = analysis_limits or AnalysisLimits()
    src = f"read_parquet({quote_literal(str(parquet))})"
    con = connect(limits)
    try:
        conflicting = _conflicting_rows(con, rejected_csv) if rejected_csv is not None else 0
        agg = _scan_counts(con, src)
        facts: dict[str, Any] = {**_metric_stats(con, agg), **_distributions(agg)}
        _users_table(con)
        with tempfile.TemporaryDirectory(
            dir=limits.temp_dir or anomalies_out.parent, prefix="anomalies-"
        ) as tmp:
            readings = _readings_sql(src, conflicting > 0)
            flagged, parts = _find_anomalies(con, readings, anomalies_out, limits, Path(tmp), top)
            if parts:  # the summaries read the parts while they are joined into one file
                con.execute(f"CREATE TEMP VIEW anomalies AS {_decorated_sql(_parts_sql(parts))}")
            else:
                con.execute(
                    f"CREATE TEMP VIEW anomalies AS SELECT * FROM {_parts_sql([anomalies_out])}"
                )
            with ThreadPoolExecutor(max_workers=1) as pool:
                joined = (
                    pool.submit(_join_parts, con.cursor(), parts, anomalies_out) if parts else None
                )
                facts |= {
                    "anomalies": _anomaly_summary(con, top, flagged),
                    "episodes": _episodes(con, top),
                    "users": _users(con, top),
                }
                if joined is not None:
                    joined.result()
    finally:
        con.close()
    return facts
