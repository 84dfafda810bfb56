"""Trends: Theil–Sen slopes of daily medians, checked against hand-computed values, and each
rule's threshold on both sides (scipy is not a dependency, so the references are by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from healthpipe.domain.trends import (
    TREND_RULES,
    assess,
    flagged_trends,
    theil_sen,
)

DAY0 = date(2025, 3, 1)


@dataclass(frozen=True)
class DailyMedian:
    day: date
    median: float


RULES = {(r.name, r.metric): r for r in TREND_RULES}
HR = RULES["resting_hr_rise", "heart_rate"]


def series(values: list[float], start: date = DAY0) -> list[DailyMedian]:
    return [DailyMedian(start + timedelta(days=i), v) for i, v in enumerate(values)]


def ramp(first: float, last: float, days: int) -> list[float]:
    return [first + (last - first) * i / (days - 1) for i in range(days)]


def test_theil_sen_matches_a_hand_computed_fit() -> None:
    # pairwise slopes 2, 0.5, -1 -> median 0.5; residuals 1, 2.5, 1 -> intercept 1
    assert theil_sen([(0, 1), (1, 3), (2, 2)]) == (0.5, 1.0)
    # four points: slopes 1, 1.5, 4/3, 2, 5/3, 1 -> median (4/3 + 1.5) / 2
    slope, _ = theil_sen([(0, 0), (1, 1), (2, 3), (3, 4)]) or (0, 0)
    assert slope == pytest.approx((4 / 3 + 1.5) / 2)
    assert theil_sen([(1, 5)]) is None
    assert theil_sen([(1, 5), (1, 7)]) is None


def test_one_wild_day_does_not_bend_the_slope() -> None:
    values = [70.0 + i for i in range(10)]
    values[5] = 200.0
    fit = theil_sen([(float(i), v) for i, v in enumerate(values)])
    assert fit == (1.0, 70.0)


def test_heart_rate_rising_15_bpm_over_14_days_is_flagged_with_its_criterion() -> None:
    found = assess("u1", HR, series(ramp(70, 85, 14)))
    assert found is not None
    trend, flagged = found
    assert flagged
    assert trend.change == pytest.approx(15 * 14 / 13, abs=0.05)  # slope 15/13 per day
    assert (trend.start, trend.end, trend.days) == (70.0, 85.0, 14)
    assert "10 bpm over 14 days" in trend.criterion


def test_heart_rate_rising_9_bpm_over_14_days_is_not_flagged() -> None:
    found = assess("u1", HR, series(ramp(70, 78.3, 14)))  # 8.3 over 13 days -> 8.9 over 14
    assert found is not None and not found[1]


def test_fewer_than_the_minimum_days_is_not_assessed() -> None:
    assert HR.min_days == 10  # 70 % of the 14-day span
    assert assess("u1", HR, series(ramp(70, 100, HR.min_days - 1))) is None
    gappy = series(ramp(70, 100, 28))[::2]  # 14 days with data over 27 days, 7 in the span
    assert assess("u1", HR, gappy) is None


def test_only_the_rules_span_ending_on_the_last_day_counts() -> None:
    rose_then_flat = ramp(70, 90, 14) + [90.0] * 14
    found = assess("u1", HR, series(rose_then_flat))
    assert found is not None and not found[1]
    assert found[0].first_day == (DAY0 + timedelta(days=14)).isoformat()
    flat_then_rose = [70.0] * 14 + ramp(70, 82, 14)
    found = assess("u1", HR, series(flat_then_rose))
    assert found is not None and found[1]


@pytest.mark.parametrize(
    ("metric", "values", "rules"),
    [
        ("systolic_bp", ramp(121, 136, 28), {"systolic_rise", "bp_into_stage_1"}),
        ("systolic_bp", ramp(112, 128, 28), {"systolic_rise"}),  # rises, stays below 130
        ("systolic_bp", ramp(126, 132, 28), {"bp_into_stage_1"}),  # crosses 130, rises 6
        ("systolic_bp", ramp(128, 131, 28), set()),  # crosses, but rises only 3
        ("systolic_bp", [130.0] * 28, set()),  # already stage 1: no crossing
        ("diastolic_bp", ramp(74, 84, 28), {"bp_into_stage_1"}),
        ("spo2", ramp(97, 93, 14), {"spo2_fall"}),
        ("spo2", ramp(97, 95, 14), set()),
        ("heart_rate", ramp(85, 70, 14), set()),  # a fall is no rise
    ],
)
def test_each_rule_flags_on_its_side_of_the_threshold(
    metric: str, values: list[float], rules: set[str]
) -> None:
    assessed, flagged = flagged_trends("u1", {metric: series(values)})
    assert assessed
    assert {t.rule for t in flagged} == rules
    assert all(t.metric == metric for t in flagged)


def test_a_participant_without_enough_days_is_not_assessed() -> None:
    assert flagged_trends("u1", {"heart_rate": series([70.0] * 3)}) == (False, [])
    assert flagged_trends("u1", {}) == (False, [])
