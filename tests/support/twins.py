"""Python twins and reference SQL of the coded rules, for the tests only.

The analysis runs coded SQL (`dataops/analysis/`); the tests hold it to these plain
formulations: the partial NEWS2 summed in Python, the single-parameter episodes of a flag
series, and one row per (reading, rule) that flags, written plainly in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import bp_category_sql, news2_kind_sql, news2_score_sql
from healthpipe.domain.episodes import MIN_EPISODE_READINGS, Episode, find_runs
from healthpipe.domain.validation_sql import quote_ident, quote_literal


def partial_news2(heart_rate: float, spo2: float, systolic_bp: float, temp_c: float) -> int:
    """The partial NEWS2 of one reading: the sum of its four single-parameter scores."""
    return (
        cl.news2_score("heart_rate", heart_rate)
        + cl.news2_score("spo2", spo2)
        + cl.news2_score("systolic_bp", systolic_bp)
        + cl.news2_score("temp_c", temp_c)
    )


def find_episodes(abnormal: Sequence[bool], minimum: int = MIN_EPISODE_READINGS) -> list[Episode]:
    """Runs of True of length >= minimum in a user's time-ordered readings of one metric."""
    return find_runs([("x" if flag else None, 0.0) for flag in abnormal], minimum=minimum)


def bp_severity_sql(category_col: str) -> str:
    """The severity of an ACC/AHA category name in `category_col`."""
    arms = " ".join(
        f"WHEN {quote_literal(c.name)} THEN {int(c.severity)}" for c in cl.BP_CATEGORIES
    )
    return f"CASE {category_col} {arms} END"


def clinical_anomalies_sql(readings: str) -> str:
    """One row per (reading, rule) that flags: source_row, user_id, event_time, ord,
    metric, kind, severity (1..3), value, rule (a plain formulation, the reference the tests
    hold the coded analysis to; no activity cap)."""
    parts = []
    covered = ", ".join(quote_literal(k) for k in sorted(cl.NEWS2_KINDS_COVERED_BY_BP))
    for param in cl.NEWS2_PARAMETERS:
        col = quote_ident(param.metric)
        parts.append(
            f"SELECT source_row, user_id, event_time, ord, '{param.metric}' AS metric, "
            f"{news2_kind_sql(param.metric)} AS kind, {news2_score_sql(param.metric)} AS severity, "
            f"{col} AS value, 'news2' AS rule FROM {readings} WHERE {col} IS NOT NULL"
        )
    news2 = " UNION ALL ".join(parts)
    bp = (
        "SELECT source_row, user_id, event_time, ord, 'blood_pressure' AS metric, kind, "
        f"{bp_severity_sql('kind')} AS severity, systolic_bp AS value, 'acc_aha' AS rule "
        f"FROM (SELECT *, {bp_category_sql()} AS kind FROM {readings})"
    )
    return (
        f"SELECT * FROM ({news2}) WHERE severity > 0 AND kind NOT IN ({covered}) "
        f"UNION ALL SELECT * FROM ({bp}) WHERE severity > 0"
    )
