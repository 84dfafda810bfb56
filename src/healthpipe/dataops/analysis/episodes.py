"""Episodes: runs of consecutive abnormal readings of one user for one vital in one
direction, found in one group's anomalies with streaming windows."""

from __future__ import annotations

from healthpipe.dataops.analysis.flags import ACTIVITY_BIT, BREAK_BIT
from healthpipe.domain.anomaly_sql import (
    DIRECTION_CODES,
    clinical_items,
    heart_rate_items,
    item_direction_code_sql,
    item_kind_sql,
    item_metric_sql,
)
from healthpipe.domain.episodes import MIN_EPISODE_READINGS


def episodes_sql(anomalies: str) -> str:
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
    one aggregate of plain numbers per run and one join for the worst reading's fields (not
    a window partitioned by user and item: docs/scaling.md has the figures)."""
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
