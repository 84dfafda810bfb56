"""Severity-first facts, read from the anomaly file after the analysis.

The summaries of `dataops/analysis/` rank and count; a care team needs, besides, every
participant with a high-severity finding named with the reading itself, whatever the
ranking. This module reads the anomaly Parquet file (its rows carry the blood-pressure pair
and whether a reading also has a clinical finding) and returns:

- `red_scores`: readings with a NEWS2 single-parameter score of 3 (a "red score", urgent
  review in NEWS2), in total and per parameter. Systolic BP ≥ 220 scores 3 too; its
  readings are reported as a hypertensive crisis, so they are found among the crisis rows.
- `high_participants`: every participant (up to `MAX_HIGH_PARTICIPANTS`, with the total)
  with a high-severity clinical finding: how many, and for each vital and kind the worst
  reading (lowest for low kinds, highest for high kinds) with its time; blood pressure with
  both values.
- `headline`: findings by kind and by severity, a baseline finding on a reading that
  already has a clinical finding not counted as a second headline finding.
- `readings_flagged`: per listed user, how many readings have at least one finding (the
  analysis's own count is kept when it has one).
- `headline` on each listed user: its findings and their severities counted as the headline
  counts them (without a baseline finding on a reading that has a clinical finding).

Sizes are bounded. The red scores and the worst readings read the high-severity rows;
the headline and the listed users' counts read the whole anomaly file, one aggregate
each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from healthpipe.dataops.engine import EngineLimits, connect, source_literal
from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import news2_score_sql
from healthpipe.domain.validation_sql import quote_literal

MAX_HIGH_PARTICIPANTS = 50
MAX_FINDINGS_PER_PARTICIPANT = 3
HIGH = 3
MIN_MEMORY_MB = 64
BASELINE_RULE = "baseline"
BP_METRIC = "blood_pressure"


def _red_score_sql(metric: str, value: str) -> str:
    """1 when `value` of `metric` scores 3 on its NEWS2 parameter, else 0."""
    return f"CAST(({news2_score_sql(metric, value)}) = 3 AS INTEGER)"


def _worst_key_sql() -> str:
    """The order that picks a vital and kind's worst reading (lowest value for low kinds,
    highest for high kinds, then the earliest, then the first row), as one STRUCT without
    NULLs (a missing value or time sorts last): `arg_min` over it is the first row of
    `ORDER BY` the same terms."""
    low = ", ".join(quote_literal(k) for k in sorted(cl.LOW_SIDE_KINDS))
    signed = f"CASE WHEN a.kind IN ({low or 'NULL'}) THEN a.value ELSE -a.value END"
    return (
        f"struct_pack(no_value := ({signed}) IS NULL, value := coalesce({signed}, 0), "
        "no_time := a.event_time IS NULL, "
        "event_time := coalesce(a.event_time, TIMESTAMPTZ '1970-01-01 00:00:00+00'), "
        "source_row := a.source_row)"
    )


def severity_facts(anomalies: Path, user_ids: list[str], *, limits: EngineLimits) -> dict[str, Any]:
    """The severity-first facts of one analysis (see the module docstring), read from its
    anomaly file on a connection of their own."""
    # half the stage's memory: the distinct counts over the high rows (3M+ on 10M rows of
    # random readings) otherwise grow DuckDB's buffers to the whole limit
    con = connect(replace(limits, memory_limit_mb=max(MIN_MEMORY_MB, limits.memory_limit_mb // 2)))
    try:
        return severity_facts_of(con, f"read_parquet({source_literal(anomalies)})", user_ids)
    finally:
        con.close()


def severity_facts_of(
    con: duckdb.DuckDBPyConnection, src: str, user_ids: list[str]
) -> dict[str, Any]:
    """`severity_facts` over `src`, any relation with the anomaly file's columns (a file, or
    the analysis's view of the anomaly parts before they are joined into one), on `con`. The
    temporary `high` and `high_by_kind` it makes are dropped before it returns."""
    try:
        con.execute(
            # a view: the statements below scan the file's high rows again rather than
            # hold them (1.2M of 4.8M findings on a file of random readings, ~100 MB)
            "CREATE TEMP VIEW high AS SELECT user_id, metric, kind, value, event_time, "
            f"source_row, systolic_bp, diastolic_bp FROM {src} WHERE severity >= {HIGH} "
            f"AND rule <> {quote_literal(BASELINE_RULE)}"
        )
        red_terms = " ".join(
            f"WHEN {quote_literal(p.metric)} THEN {_red_score_sql(p.metric, 'value')}"
            for p in cl.NEWS2_PARAMETERS
        )
        sbp_red = _red_score_sql("systolic_bp", "systolic_bp")
        # per parameter and in total (the empty grouping set, metric NULL), in one scan
        red = con.execute(
            "SELECT metric, count(DISTINCT source_row) FROM ("
            f"SELECT source_row, metric FROM high WHERE (CASE metric {red_terms} ELSE 0 END) = 1 "
            f"UNION ALL SELECT source_row, 'systolic_bp' AS metric FROM high "
            f"WHERE metric = {quote_literal(BP_METRIC)} AND {sbp_red} = 1) "
            "GROUP BY GROUPING SETS ((metric), ())"
        ).fetchall()
        red_rows = [(m, n) for m, n in red if m is not None]
        red_readings = sum(int(n) for m, n in red if m is None)
        # one scan of the high rows for the per-participant facts: each participant's
        # findings by vital and kind, with the worst reading (one aggregate, not a window
        # sorting every high finding); the rest is read from this small table
        con.execute(
            "CREATE TEMP TABLE high_by_kind AS SELECT a.user_id, a.metric, a.kind, "
            "count(*) AS n, min(a.event_time) AS first, "
            "arg_min(struct_pack(value := a.value, event_time := a.event_time, "
            "systolic_bp := a.systolic_bp, diastolic_bp := a.diastolic_bp), "
            f"{_worst_key_sql()}) AS w FROM high a GROUP BY a.user_id, a.metric, a.kind"
        )
        (total_high_users,) = con.execute(
            "SELECT count(DISTINCT user_id) FROM high_by_kind"
        ).fetchone() or (0,)
        per_user = con.execute(
            "SELECT user_id, sum(n) AS n, min(first) AS first FROM high_by_kind "
            "GROUP BY user_id "
            f"ORDER BY n DESC, first NULLS LAST, user_id LIMIT {MAX_HIGH_PARTICIPANTS}"
        ).fetchall()
        worst = con.execute(
            "SELECT user_id, metric, kind, n, w.value, w.event_time, w.systolic_bp, "
            "w.diastolic_bp FROM high_by_kind "
            "ORDER BY user_id, w.event_time NULLS LAST, metric, kind"
        ).fetchall()
        # one scan for the headline: a baseline finding on a reading that has a clinical
        # finding is counted apart (`again`), not as a second headline finding
        again = f"coalesce(rule = {quote_literal(BASELINE_RULE)} AND with_clinical_finding, FALSE)"
        headline = con.execute(
            f"SELECT kind, severity, {again}, count(*) FROM {src} GROUP BY ALL"
        ).fetchall()
        by_kind: Counter[str] = Counter()
        severities: Counter[int] = Counter()
        on_clinical = 0
        for kind, severity, counted_apart, n in headline:
            if counted_apart:
                on_clinical += int(n)
            else:
                by_kind[str(kind)] += int(n)
                severities[int(severity)] += int(n)
        by_severity = sorted(severities.items())  # the facts' key order: low to high, always
        flagged: dict[str, int] = {}
        counted: dict[str, dict[str, int]] = {}
        if user_ids:
            listed = ", ".join(quote_literal(u) for u in user_ids)
            # one scan for both: readings with a finding (not the conflicting ones), and the
            # findings as the headline counts them; a user with none of either is left out
            for u, readings, n, h, m, lo in con.execute(
                "SELECT user_id, count(DISTINCT source_row) FILTER (WHERE NOT conflicting), "
                f"count(*) FILTER (WHERE NOT {again}), "
                f"count(*) FILTER (WHERE NOT {again} AND severity = 3), "
                f"count(*) FILTER (WHERE NOT {again} AND severity = 2), "
                f"count(*) FILTER (WHERE NOT {again} AND severity = 1) "
                f"FROM {src} WHERE user_id IN ({listed}) GROUP BY user_id"
            ).fetchall():
                if readings:
                    flagged[str(u)] = int(readings)
                if n:
                    counted[str(u)] = {
                        "findings": int(n),
                        "high": int(h),
                        "medium": int(m),
                        "low": int(lo),
                    }
    finally:
        con.execute("DROP TABLE IF EXISTS high_by_kind")
        con.execute("DROP VIEW IF EXISTS high")
    findings: dict[str, list[dict[str, Any]]] = {}
    for user, metric, kind, n, value, at, sbp, dbp in worst:
        item: dict[str, Any] = {
            "metric": str(metric),
            "kind": str(kind),
            "count": int(n),
            "value": _num(value),
            "event_time": at.isoformat() if hasattr(at, "isoformat") else at,
        }
        if metric == BP_METRIC and sbp is not None and dbp is not None:
            item |= {"systolic": _num(sbp), "diastolic": _num(dbp)}
        findings.setdefault(str(user), []).append(item)
    return {
        "red_scores": {
            "readings": int(red_readings),
            "by_metric": {str(m): int(n) for m, n in sorted(red_rows)},
        },
        "high_participants": {
            "total": int(total_high_users),
            "list": [
                {
                    "user_id": str(user),
                    "high": int(n),
                    "findings": findings.get(str(user), [])[:MAX_FINDINGS_PER_PARTICIPANT],
                }
                for user, n, _ in per_user
            ],
        },
        "headline": {
            "by_kind": dict(sorted(by_kind.items(), key=lambda kn: (-kn[1], kn[0]))),
            "by_severity": {
                cl.severity_label(int(k)): int(n)
                for k, n in by_severity
                if cl.Severity.LOW <= int(k) <= cl.Severity.HIGH
            },
            "baseline_on_clinical": int(on_clinical),
        },
        "readings_flagged": flagged,
        "headline_by_user": counted,
    }


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    number = round(float(value), 4)
    return int(number) if number.is_integer() else number


def apply_severity_facts(facts: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """Add `found` (what `severity_facts` returns for the users of `facts`' top list, or the
    merge of several) to `facts` (in place, and returned): `red_scores`,
    `high_participants`, `headline`, and `readings_flagged` and `headline` on each listed
    user."""
    users = facts["users"]["top"]
    flagged = found.pop("readings_flagged")
    counted = found.pop("headline_by_user")
    none = {"findings": 0, "high": 0, "medium": 0, "low": 0}
    for user in users:  # the analysis's own count when it has one
        user.setdefault("readings_flagged", flagged.get(str(user["user_id"]), 0))
        user["headline"] = counted.get(str(user["user_id"]), none)
    facts.update(found)
    return facts
