"""Trends: the change of a participant's DAILY MEDIAN of one vital across uploads.

Pure. Input: one participant's daily medians of one vital over the history window (the days
before the file plus the file's own days). For each rule below, the days of the rule's span
ending on the last day with data are fitted with a Theil–Sen line (the median of the pairwise
slopes, robust to a day of outliers: Sen 1968), once at least 70 % of the span's days have
data (10 of 14, 20 of 28: fewer days extrapolate day-to-day noise into a false trend); the
slope is converted to a change over the rule's span (slope per day × span days) and compared
with the rule's threshold. The fitted values on the span's first and last day with data
(intercept = median of yᵢ − slope·xᵢ) decide the ACC/AHA stage 1 crossing.

Rules (docs/trends.md has the sources):

    rule                     vital         span   flagged when
    resting_hr_rise          heart rate    14 d   change ≥ +10 bpm
    systolic_rise            systolic BP   28 d   change ≥ +15 mmHg
    bp_into_stage_1          systolic BP   28 d   fitted start < 130 and end ≥ 130, change ≥ +5
    bp_into_stage_1          diastolic BP  28 d   fitted start < 80 and end ≥ 80, change ≥ +5
    spo2_fall                SpO2          14 d   change ≤ −3 %

Every rule's `criterion` is the sentence a reader sees next to a flagged trend.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from healthpipe.domain import clinical
from healthpipe.domain.documents.trend import Trend, Trends

MIN_SHARE_OF_SPAN = 0.7  # days with data, of the rule's span
MAX_FLAGGED = 200  # per file: the analysis document stays bounded
MIN_STAGE_1_RISE = 5.0  # mmHg over 28 days: a flat series at 129/130 does not "cross"


class DayMedian(Protocol):
    """One day's median of one vital for one participant (the history's
    `DailyVitalSummary` is one)."""

    @property
    def day(self) -> date: ...

    @property
    def median(self) -> float: ...


@dataclass(frozen=True)
class TrendRule:
    name: str
    metric: str
    span_days: int
    change: float  # signed: a rise (> 0) or a fall (< 0) of at least this much over the span
    criterion: str
    crossing: float | None = None  # a category limit the fitted line crosses upwards

    @property
    def min_days(self) -> int:
        return math.ceil(self.span_days * MIN_SHARE_OF_SPAN)

    def flags(self, change: float, start: float, end: float) -> bool:
        if self.crossing is not None:
            return start < self.crossing <= end and change >= self.change
        return change >= self.change if self.change > 0 else change <= self.change


def _basis(span_days: int, what: str = "slope") -> str:
    """'(Theil–Sen slope, ≥ 10 of 14 days with data)': how a rule's change is measured."""
    need = math.ceil(span_days * MIN_SHARE_OF_SPAN)
    return f"(Theil–Sen {what}, ≥ {need} of {span_days} days with data)"


TREND_RULES: tuple[TrendRule, ...] = (
    TrendRule(
        "resting_hr_rise",
        "heart_rate",
        14,
        10.0,
        "daily median heart rate rising ≥ 10 bpm over 14 days " + _basis(14),
    ),
    TrendRule(
        "systolic_rise",
        "systolic_bp",
        28,
        15.0,
        "daily median systolic BP rising ≥ 15 mmHg over 28 days " + _basis(28),
    ),
    TrendRule(
        "bp_into_stage_1",
        "systolic_bp",
        28,
        MIN_STAGE_1_RISE,
        f"daily median systolic BP moving from < {clinical.STAGE_1_SYSTOLIC_FROM} to "
        f"≥ {clinical.STAGE_1_SYSTOLIC_FROM} mmHg (ACC/AHA stage 1) over 28 days, rising "
        f"≥ {MIN_STAGE_1_RISE:g} mmHg " + _basis(28, "fit"),
        crossing=float(clinical.STAGE_1_SYSTOLIC_FROM),
    ),
    TrendRule(
        "bp_into_stage_1",
        "diastolic_bp",
        28,
        MIN_STAGE_1_RISE,
        f"daily median diastolic BP moving from < {clinical.STAGE_1_DIASTOLIC_FROM} to "
        f"≥ {clinical.STAGE_1_DIASTOLIC_FROM} mmHg (ACC/AHA stage 1) over 28 days, rising "
        f"≥ {MIN_STAGE_1_RISE:g} mmHg " + _basis(28, "fit"),
        crossing=float(clinical.STAGE_1_DIASTOLIC_FROM),
    ),
    TrendRule(
        "spo2_fall",
        "spo2",
        14,
        -3.0,
        "daily median SpO2 falling ≥ 3 % over 14 days " + _basis(14),
    ),
)


def theil_sen(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of the Theil–Sen line through (x, y) points: the median of the
    slopes of every pair with distinct x, and the median of yᵢ − slope·xᵢ. None with fewer
    than two distinct x."""
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    ]
    if not slopes:
        return None
    slope = statistics.median(slopes)
    return slope, statistics.median(y - slope * x for x, y in points)


def _rounded(value: float, digits: int = 2) -> float:
    return round(value, digits) + 0.0  # no -0.0


def assess(user_id: str, rule: TrendRule, daily: Iterable[DayMedian]) -> tuple[Trend, bool] | None:
    """The participant's trend of `rule.metric` and whether `rule` flags it (decided on the
    unrounded fit); None with fewer than `rule.min_days` days with data in the span ending on
    the last day with data."""
    by_day = {d.day: d.median for d in daily if math.isfinite(d.median)}
    if not by_day:
        return None
    last = max(by_day)
    span = sorted(
        (day, value) for day, value in by_day.items() if (last - day).days < rule.span_days
    )
    if len(span) < rule.min_days:
        return None
    first = span[0][0]
    fit = theil_sen([(float((day - first).days), value) for day, value in span])
    if fit is None:
        return None
    slope, intercept = fit
    start, end = intercept, intercept + slope * (last - first).days
    change = slope * rule.span_days
    trend = Trend(
        user_id=user_id,
        metric=rule.metric,
        rule=rule.name,
        criterion=rule.criterion,
        span_days=rule.span_days,
        days=len(span),
        first_day=first.isoformat(),
        last_day=last.isoformat(),
        slope_per_day=_rounded(slope, 3),
        change=_rounded(change, 1),
        start=_rounded(start, 1),
        end=_rounded(end, 1),
        daily=[_rounded(value, 1) for _, value in span],
    )
    return trend, rule.flags(change, start, end)


def flagged_trends(
    user_id: str,
    daily_by_metric: Mapping[str, Sequence[DayMedian]],
    rules: Sequence[TrendRule] = TREND_RULES,
) -> tuple[bool, list[Trend]]:
    """(whether any rule could be assessed, the trends its rules flag) for one participant."""
    assessed = False
    flagged: list[Trend] = []
    for rule in rules:
        found = assess(user_id, rule, daily_by_metric.get(rule.metric, ()))
        if found is None:
            continue
        assessed = True
        trend, flags = found
        if flags:
            flagged.append(trend)
    return assessed, flagged


class HasDailyMedians(Protocol):
    """A participant's history as trends read it (the history's `ParticipantHistory` is one):
    each vital's daily medians over the window, oldest first."""

    @property
    def daily(self) -> Mapping[str, Sequence[DayMedian]]: ...


def file_trends(
    histories: Mapping[str, HasDailyMedians],
    window_days: int,
    rules: Sequence[TrendRule] = TREND_RULES,
    *,
    limit: int = MAX_FLAGGED,
) -> Trends:
    """The flagged trends of a file's participants (keyed by user id), in user order, at most
    `limit` (the count of participants assessed is of all of them)."""
    assessed = 0
    flagged: list[Trend] = []
    for user_id in sorted(histories):
        ok, found = flagged_trends(user_id, histories[user_id].daily, rules)
        assessed += ok
        flagged += found
    return Trends(window_days=window_days, participants_assessed=assessed, flagged=flagged[:limit])


def merge_trends(parts: Sequence[Trends], *, limit: int = MAX_FLAGGED) -> Trends | None:
    """`file_trends` of a file from its groups of participants' (each group's own
    `file_trends`, its participants disjoint from the others'): the counts add, the flagged
    trends in user order (each participant's in rule order), at most `limit`. None: no part."""
    if not parts:
        return None
    flagged = sorted((t for part in parts for t in part.flagged), key=lambda t: t.user_id)
    return Trends(
        window_days=parts[0].window_days,
        participants_assessed=sum(part.participants_assessed for part in parts),
        flagged=flagged[:limit],
    )
