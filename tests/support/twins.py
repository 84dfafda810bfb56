"""Python twins and reference SQL of the coded rules, for the tests only.

The analysis runs coded SQL (`dataops/analysis/`), built from the tables and constants of
`domain/` (clinical bands, baseline constants, episode and activity rules); the tests hold it
to these plain formulations: the partial NEWS2 summed in Python, one row per (reading, rule)
that flags written plainly in SQL, the modified z-score and baseline severity per series,
episodes as runs of a user's readings, and the activity window of one reading.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from healthpipe.domain import clinical as cl
from healthpipe.domain.anomaly_sql import bp_category_sql, news2_kind_sql, news2_score_sql
from healthpipe.domain.baseline import (
    MIN_READINGS,
    STRONG_THRESHOLD,
    THRESHOLD,
    modified_z,
)
from healthpipe.domain.clinical import (
    ACTIVITY_PREVIOUS_WITHIN_SECONDS,
    ACTIVITY_STEPS_ABOVE,
    EPISODE_GAP_SECONDS,
    RESOLUTION,
    Severity,
    outside_normal_band,
)
from healthpipe.domain.episodes import MIN_EPISODE_READINGS
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


# --- the personal baseline (domain/baseline.py), in Python -------------------------------


def median_absolute_deviation(values: Sequence[float]) -> float:
    center = statistics.median(values)
    return statistics.median(abs(v - center) for v in values)


def mean_absolute_deviation(values: Sequence[float]) -> float:
    """Mean |x − median| (Iglewicz & Hoaglin's MeanAD, about the median)."""
    center = statistics.median(values)
    return sum(abs(v - center) for v in values) / len(values)


def modified_z_scores(values: Sequence[float], metric: str | None = None) -> list[float | None]:
    """One score per value, or Nones when there are too few readings. With `metric`, the
    spread is floored at its measuring resolution."""
    if len(values) < MIN_READINGS:
        return [None] * len(values)
    center = statistics.median(values)
    mad = median_absolute_deviation(values)
    meanad = mean_absolute_deviation(values)
    resolution = RESOLUTION.get(metric, 0.0) if metric else 0.0
    return [modified_z(v, center, mad, meanad, resolution) for v in values]


def is_outlier(score: float | None) -> bool:
    return score is not None and abs(score) > THRESHOLD


def baseline_severity(
    score: float, metric: str | None = None, value: float | None = None
) -> Severity:
    """Low, or medium if strong (|M| > 5) and, given a metric and value, the value is also
    outside the chart's normal band."""
    if abs(score) <= STRONG_THRESHOLD:
        return Severity.LOW
    if metric is not None and value is not None and not outside_normal_band(metric, value):
        return Severity.LOW
    return Severity.MEDIUM


# --- episodes (dataops/analysis/episodes.py), in Python ----------------------------------


@dataclass(frozen=True)
class Episode:
    start_index: int
    end_index: int  # inclusive

    @property
    def readings(self) -> int:
        return self.end_index - self.start_index + 1


def find_runs(
    readings: Sequence[tuple[str | None, float | None]],
    *,
    gap_seconds: float = EPISODE_GAP_SECONDS,
    minimum: int = MIN_EPISODE_READINGS,
) -> list[Episode]:
    """Episodes in one user's time-ordered readings of one vital, each given as (direction,
    epoch seconds): direction "low"/"high" when the reading is abnormal (and eligible), None
    otherwise. A run is broken by a None, a change of direction, a missing time, or more
    than `gap_seconds` between consecutive readings."""
    episodes: list[Episode] = []
    start: int | None = None  # first reading of the current run

    def close(end: int) -> None:
        if start is not None and end - start + 1 >= minimum:
            episodes.append(Episode(start, end))

    for index, (direction, when) in enumerate(readings):
        if direction is None:
            close(index - 1)
            start = None
            continue
        if start is not None:
            prev_direction, prev_when = readings[index - 1]
            if (
                prev_direction != direction
                or when is None
                or prev_when is None
                or when - prev_when > gap_seconds
            ):
                close(index - 1)
                start = None
        if start is None:
            start = index
    close(len(readings) - 1)
    return episodes


# --- activity (dataops/analysis/findings.py), in Python ----------------------------------


def during_activity(
    steps: float | None,
    previous_steps: float | None,
    seconds_since_previous: float | None,
    steps_above: float = ACTIVITY_STEPS_ABOVE,
) -> bool:
    """Whether a reading is during activity: its steps above `steps_above`, or those of
    the participant's reading just before it (`previous_steps`, taken
    `seconds_since_previous` earlier; None: no such reading or no time) when that one is at
    most ACTIVITY_PREVIOUS_WITHIN_SECONDS earlier."""
    if steps is not None and steps > steps_above:
        return True
    return (
        previous_steps is not None
        and previous_steps > steps_above
        and seconds_since_previous is not None
        and seconds_since_previous <= ACTIVITY_PREVIOUS_WITHIN_SECONDS
    )
