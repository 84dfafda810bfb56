"""The bounded summaries of the anomaly file (view `anomalies`), the episodes (table
`episodes`) and the users (table `users`): counts, the top rows and a timeline. The counts
come from the group pass (`findings.find_anomalies`): `finding_counts` and `user_counts`."""

from __future__ import annotations

from typing import Any

import duckdb

from healthpipe.dataops.analysis.common import AnalysisLimits, clean, fetch_rows, iso
from healthpipe.dataops.analysis.flags import ACTIVITY_BIT, CLINICAL_BIT, CONFLICTING_BIT
from healthpipe.domain.anomaly_sql import item_kind_sql, item_metric_sql, item_rule_sql
from healthpipe.domain.clinical import severity_label

TIMELINE_BUCKETS = 48


def named(rows: list[dict[str, Any]], column: str = "severity") -> list[dict[str, Any]]:
    """`rows` with the severity number in `column` replaced by its label, in place."""
    for row in rows:
        row[column] = severity_label(int(row[column]))
    return rows


def top_severity_floor(con: duckdb.DuckDBPyConnection, top: int) -> int:
    """The lowest severity the `top` most severe findings can have, from `finding_counts`:
    the highest severity with at least `top` findings at or above it (0 when there are
    fewer), so that the top list sorts only those rows."""
    (floor,) = con.execute(
        "SELECT coalesce(max(severity), 0) FROM (SELECT severity, sum(sum(n)) OVER "
        "(ORDER BY severity DESC) AS at_least FROM finding_counts GROUP BY severity) "
        f"WHERE at_least >= {int(top)}"
    ).fetchone() or (0,)
    return int(floor)


def anomaly_summary(
    con: duckdb.DuckDBPyConnection, limits: AnalysisLimits, readings_flagged: int
) -> dict[str, Any]:
    # the counts from the group pass's `finding_counts`, named as in the anomaly file
    named_counts = (
        f"SELECT {item_metric_sql('item')} AS metric, {item_kind_sql('item', 'band')} AS kind, "
        f"CAST(severity AS INTEGER) AS severity, {item_rule_sql('item')} AS rule, flags, n "
        "FROM finding_counts"
    )

    def counts(col: str) -> dict[str, int]:
        return {
            str(r["k"]): int(r["n"])
            for r in fetch_rows(
                con,
                f"SELECT {col} AS k, sum(n) AS n FROM ({named_counts}) GROUP BY k "
                "ORDER BY n DESC, k",
            )
        }

    by_severity = {severity_label(int(k)): v for k, v in counts("severity").items()}
    top = fetch_rows(
        con,
        "SELECT source_row, user_id, event_time, metric, kind, severity, value, rule, "
        "systolic_bp, diastolic_bp, bp_trigger, during_activity, conflicting, "
        "with_clinical_finding FROM anomalies "
        f"WHERE severity >= {top_severity_floor(con, limits.top_anomalies)} "
        "ORDER BY severity DESC, event_time NULLS LAST, source_row, metric, rule "
        f"LIMIT {limits.top_anomalies}",
    )
    named(top)
    timeline = fetch_rows(
        con,
        "WITH b AS (SELECT min(event_time) AS lo, max(event_time) AS hi FROM anomalies) "
        "SELECT time_bucket(greatest(to_seconds(CAST(ceil(epoch(hi) - epoch(lo)) AS BIGINT) "
        f"// {TIMELINE_BUCKETS}), INTERVAL 1 MINUTE), event_time, lo) AS bucket, "
        "severity, count(*) AS n FROM anomalies, b WHERE event_time IS NOT NULL "
        "GROUP BY bucket, severity ORDER BY bucket, severity",
    )
    (total, with_clinical, active, conflicting) = con.execute(
        "SELECT coalesce(sum(n), 0), sum(n) FILTER (WHERE rule = 'baseline' AND "
        f"(flags & {CLINICAL_BIT}) <> 0), sum(n) FILTER (WHERE (flags & {ACTIVITY_BIT}) <> 0 "
        f"AND metric = 'heart_rate'), sum(n) FILTER (WHERE (flags & {CONFLICTING_BIT}) <> 0) "
        f"FROM ({named_counts})"
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
        "top": [clean(r) for r in top],
        "timeline": [
            {
                "bucket": iso(r["bucket"]),
                "severity": severity_label(int(r["severity"])),
                "count": int(r["n"]),
            }
            for r in timeline
        ],
    }


def episode_summary(con: duckdb.DuckDBPyConnection, limits: AnalysisLimits) -> dict[str, Any]:
    (total,) = con.execute("SELECT count(*) FROM episodes").fetchone() or (0,)
    listed = fetch_rows(
        con,
        "SELECT user_id, metric, kind, severity, readings, start_time, end_time, peak_value, "
        "epoch(end_time) - epoch(start_time) AS duration_s, direction, worst, "
        "peak_value AS worst_value, worst_systolic_bp, worst_diastolic_bp, worst_time "
        "FROM episodes "
        "ORDER BY severity DESC, readings DESC, start_time, user_id, metric "
        f"LIMIT {limits.top_episodes}",
    )
    named(listed)
    by_kind = {
        str(r["kind"]): int(r["n"])
        for r in fetch_rows(
            con, "SELECT kind, count(*) AS n FROM episodes GROUP BY kind ORDER BY n DESC, kind"
        )
    }
    # the longest of the whole file (the list holds the most severe): the analyst quotes it
    longest = fetch_rows(
        con,
        "SELECT user_id, metric, kind, severity, readings, start_time, end_time, peak_value, "
        "epoch(end_time) - epoch(start_time) AS duration_s, worst FROM episodes "
        "ORDER BY readings DESC, duration_s DESC, start_time, user_id, metric LIMIT 1",
    )
    named(longest)
    return {
        "total": int(total),
        "by_kind": by_kind,
        "list": [clean(r) for r in listed],
        "longest": clean(longest[0]) if longest else None,
    }


def user_summary(con: duckdb.DuckDBPyConnection, limits: AnalysisLimits) -> dict[str, Any]:
    rows = fetch_rows(
        con,
        "WITH r AS (SELECT user_id, readings FROM users), "
        "a AS (SELECT u.user_id, c.anomalies, c.high, c.medium, c.low, "
        "CAST(c.worst AS INTEGER) AS worst, c.readings_flagged "
        "FROM user_counts c JOIN users u ON u.uid = c.uid), "
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
    (flagged,) = con.execute(
        "SELECT count(u.user_id) FROM user_counts c JOIN users u ON u.uid = c.uid"
    ).fetchone() or (0,)
    named(rows, "worst")
    return {"total": int(total), "flagged": int(flagged), "top": [clean(r) for r in rows]}
