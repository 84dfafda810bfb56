"""`healthpipe history`'s pure parts: the trend rules over a participant's daily medians, the
stored baseline, and the view's worst severity (never "none" while a finding exists)."""

from __future__ import annotations

from datetime import date, timedelta

from healthpipe.dataops.history import stored_baselines, timeline_trends
from healthpipe.domain.documents.history import DayHistogram
from healthpipe.domain.documents.participant_timeline import (
    FindingKind,
    VitalDay,
    VitalHistory,
)
from healthpipe.report.history import worst_of

START = date(2025, 7, 1)


def heart_rate(medians: list[float]) -> VitalHistory:
    days = [
        VitalDay(day=(START + timedelta(days=i)).isoformat(), n=20, median=m, min=m - 5, max=m + 5)
        for i, m in enumerate(medians)
    ]
    return VitalHistory(metric="heart_rate", n=20 * len(days), days=days)


def test_a_rise_of_15_bpm_over_14_days_is_flagged_with_its_criterion() -> None:
    assessed, trends = timeline_trends("P-0", [heart_rate([70 + i * 15 / 13 for i in range(14)])])
    assert assessed
    assert [(t.rule, t.days, t.first_day, t.last_day) for t in trends] == [
        ("resting_hr_rise", 14, "2025-07-01", "2025-07-14")
    ]
    assert trends[0].change >= 10 and "≥ 10 bpm over 14 days" in trends[0].criterion


def test_a_flat_series_is_assessed_and_not_flagged() -> None:
    assert timeline_trends("P-0", [heart_rate([70.0] * 14)]) == (True, [])


def test_two_days_are_too_few_to_assess() -> None:
    assert timeline_trends("P-0", [heart_rate([70.0, 95.0])]) == (False, [])


def test_the_worst_severity_is_none_only_without_findings() -> None:
    low = FindingKind(
        kind="k", metric="m", label="l", reference="", criterion="", total=2,
        by_severity={"low": 2},
    )  # fmt: skip
    high = low.model_copy(update={"by_severity": {"low": 1, "high": 1}})
    assert worst_of([]) == "none"
    assert worst_of([low]) == "low"
    assert worst_of([low, high]) == "high"


def test_the_stored_baseline_is_the_window_s_histograms_to_the_last_day() -> None:
    last = date(2025, 7, 28)
    inside = DayHistogram(
        pseudonym="P-0", day=last, dataset_id="a", bins={"heart_rate": {70: 5, 74: 5}}
    )
    before = DayHistogram(
        pseudonym="P-0",
        day=last - timedelta(days=29),
        dataset_id="b",
        bins={"heart_rate": {200: 50}},
    )
    (found,) = stored_baselines("P-0", [inside, before], last, 28)
    assert (found.metric, found.median, found.n) == ("heart_rate", 72, 10)
    assert (found.window_start, found.window_end) == ("2025-06-30", "2025-07-28")
    assert stored_baselines("P-0", [], last, 28) == []
