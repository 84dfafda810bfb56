"""SQL for the clinical and baseline anomaly rules, generated from the domain tables."""

from __future__ import annotations

from healthpipe.domain import baseline as bl
from healthpipe.domain import clinical as cl
from healthpipe.domain.validation_sql import quote_ident, quote_literal

BASELINE_METRICS = ("heart_rate", "spo2", "temp_c", "systolic_bp", "diastolic_bp")


def _band_case(param: cl.News2Parameter, col: str, pick: str) -> str:
    arms = []
    for band in param.bands[:-1]:
        value = str(band.score) if pick == "score" else _kind(band.kind)
        arms.append(f"WHEN {col} <= {band.upper!r} THEN {value}")
    last = param.bands[-1]
    final = str(last.score) if pick == "score" else _kind(last.kind)
    return "CASE " + " ".join(arms) + f" ELSE {final} END"


def _kind(kind: str | None) -> str:
    return "NULL" if kind is None else quote_literal(kind)


def news2_score_sql(metric: str, col: str | None = None) -> str:
    return _band_case(cl.NEWS2_BY_METRIC[metric], col or quote_ident(metric), "score")


def news2_kind_sql(metric: str, col: str | None = None) -> str:
    return _band_case(cl.NEWS2_BY_METRIC[metric], col or quote_ident(metric), "kind")


def partial_news2_sql() -> str:
    return " + ".join(f"({news2_score_sql(p.metric)})" for p in cl.NEWS2_PARAMETERS)


def bp_category_sql(sbp: str = "systolic_bp", dbp: str = "diastolic_bp") -> str:
    s, d = quote_ident(sbp), quote_ident(dbp)
    return (
        f"CASE WHEN {s} > {cl.CRISIS_SYSTOLIC_ABOVE} OR {d} > {cl.CRISIS_DIASTOLIC_ABOVE} "
        f"THEN '{cl.BP_CRISIS.name}' "
        f"WHEN {s} >= {cl.STAGE_2_SYSTOLIC_FROM} OR {d} >= {cl.STAGE_2_DIASTOLIC_FROM} "
        f"THEN '{cl.BP_STAGE_2.name}' "
        f"WHEN {s} >= {cl.STAGE_1_SYSTOLIC_FROM} OR {d} >= {cl.STAGE_1_DIASTOLIC_FROM} "
        f"THEN '{cl.BP_STAGE_1.name}' "
        f"WHEN {s} >= {cl.ELEVATED_SYSTOLIC_FROM} THEN '{cl.BP_ELEVATED.name}' "
        f"ELSE '{cl.BP_NORMAL.name}' END"
    )


def bp_severity_sql(category_col: str) -> str:
    arms = " ".join(
        f"WHEN {quote_literal(c.name)} THEN {int(c.severity)}" for c in cl.BP_CATEGORIES
    )
    return f"CASE {category_col} {arms} END"


def clinical_anomalies_sql(readings: str) -> str:
    """One row per (reading, rule) that flags: source_row, user_id, event_time, ord,
    metric, kind, severity (1..3), value, rule."""
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


def baseline_anomalies_sql(readings: str, metrics: tuple[str, ...] = BASELINE_METRICS) -> str:
    """Modified z-score per user and metric (users with >= MIN_READINGS readings, MAD > 0).

    Medians are holistic (they hold every value of a group): run one metric at a time to
    keep the memory of a large file within the engine's limit.
    """
    parts = []
    for metric in metrics:
        col = quote_ident(metric)
        parts.append(
            f"SELECT r.source_row, r.user_id, r.event_time, r.ord, '{metric}' AS metric, "
            f"'baseline_deviation' AS kind, {bl.CONSISTENCY!r} * (r.{col} - b.med) / b.mad AS z, "
            f"r.{col} AS value FROM {readings} r JOIN ("
            f"SELECT m.user_id, m.med, median(abs(x.{col} - m.med)) AS mad FROM {readings} x "
            f"JOIN (SELECT user_id, median({col}) AS med FROM {readings} GROUP BY user_id "
            f"HAVING count({col}) >= {bl.MIN_READINGS}) m USING (user_id) "
            f"GROUP BY m.user_id, m.med) b USING (user_id) WHERE b.mad > 0"
        )
    union = " UNION ALL ".join(parts)
    return (
        "SELECT source_row, user_id, event_time, ord, metric, kind, "
        f"CASE WHEN abs(z) > {bl.STRONG_THRESHOLD!r} THEN 2 ELSE 1 END AS severity, value, "
        f"'baseline' AS rule, z FROM ({union}) WHERE abs(z) > {bl.THRESHOLD!r}"
    )
