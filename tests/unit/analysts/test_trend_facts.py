"""Trend facts in the analyst brief: pseudonymous labels, every number grounded, and the
builtin analyst's sentences stating each trend's criterion."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.analysts.grounding import check_grounding
from healthpipe.analysts.meaning import split_statements
from healthpipe.analysts.prompt import build_prompt
from healthpipe.domain.brief import build_brief
from healthpipe.domain.documents import (
    AnalysisFacts,
    Brief,
    DataQuality,
    MetricStats,
    Participant,
    Participants,
)
from healthpipe.domain.insights import InsightSet
from healthpipe.domain.trends import file_trends


@dataclass(frozen=True)
class Day:
    day: date
    median: float


@dataclass
class History:
    daily: dict[str, list[Day]] = field(default_factory=dict)


def days(values: list[float]) -> list[Day]:
    return [Day(date(2025, 5, 1) + timedelta(days=i), v) for i, v in enumerate(values)]


def facts() -> AnalysisFacts:
    people = [Participant(user_id=u, readings=24) for u in ("alice", "bob", "carol")]
    return AnalysisFacts(
        readings=72,
        metrics={"heart_rate": MetricStats(count=72, median=75)},
        users=Participants(total=3, top=people),
    )


def brief_with_trends() -> Brief:
    histories = {
        "alice": History({"heart_rate": days([72.0 + i for i in range(14)])}),  # +14 bpm
        "bob": History({"heart_rate": days([75.0] * 14)}),
        "carol": History({"systolic_bp": days([124.0 + 0.4 * i for i in range(28)])}),
    }
    trends = file_trends(histories, 28)
    quality = DataQuality(rows_input=72, rows_valid=72, rows_rejected=0)
    return build_brief(facts(), quality, trends)


def test_the_brief_carries_flagged_trends_by_label_never_by_id() -> None:
    brief = brief_with_trends()
    assert brief.trends_window_days == 28
    assert [(t.metric, t.rule) for t in brief.trends] == [
        ("heart_rate", "resting_hr_rise"),
        ("systolic_bp", "bp_into_stage_1"),
    ]
    assert all(t.participant.startswith("P") for t in brief.trends)
    text = brief.dumps()
    assert "alice" not in text and "carol" not in text


def test_a_brief_without_history_has_no_trend_keys() -> None:
    quality = DataQuality(rows_input=72, rows_valid=72, rows_rejected=0)
    assert "trends" not in build_brief(facts(), quality).as_json()


def test_the_builtin_analyst_states_each_trend_and_its_criterion_all_grounded() -> None:
    report = BuiltinAnalyst().analyze(brief_with_trends())
    trend_lines = [t for t in report.result.insights if "daily median" in t]
    assert len(trend_lines) == 2
    assert "from 72 to 85 bpm" in trend_lines[0] and "≥ 10 bpm over 14 days" in trend_lines[0]
    assert "ACC/AHA stage 1" in trend_lines[1]
    assert report.grounding["dropped"] == []
    assert "2 trends crossed a threshold compared with the last 28 days" in report.result.summary


def test_a_low_risk_summary_leads_with_the_trends_and_states_what_low_means() -> None:
    """A low risk level next to flagged trends must not read as "all clear": the summary
    opens with the trends and a call to review them, and "low" says what it is computed
    from (this file's readings' findings)."""
    brief = brief_with_trends()
    report = BuiltinAnalyst().analyze(brief)
    summary = report.result.summary
    (first, second, *_) = split_statements(summary)
    people = ", ".join(dict.fromkeys(t.participant for t in brief.trends))
    assert first == (
        f"2 trends crossed a threshold compared with the last 28 days ({people}): review them."
    )
    assert second.startswith(
        "Risk from this file's readings alone is low (no high- or medium-severity finding)"
    )
    assert "Overall risk is low" not in summary
    assert report.grounding["dropped"] == []


def test_an_llm_quoting_a_trend_is_grounded_and_a_made_up_trend_is_not() -> None:
    brief = brief_with_trends()
    (hr, _) = brief.trends
    good = f"{hr.participant}'s daily median heart rate rose {hr.change} bpm over 14 days."
    made_up = f"{hr.participant}'s daily median heart rate rose 31 bpm over 14 days."
    result = InsightSet(
        insights=[good, made_up, "72 readings were valid."],
        recommendations=["Repeat the measurement."],
        summary="Two trends over the last 28 days.",
        risk_level="moderate",
    )
    checked = check_grounding(result, brief.as_json())
    assert checked.result is not None
    assert checked.result.insights == [good, "72 readings were valid."]
    assert [d["unsupported"] for d in checked.dropped] == [["31"]]


def test_the_brief_keeps_at_most_twenty_trends_and_the_prompt_fits() -> None:
    rising = [72.0 + i for i in range(14)]
    histories = {f"u{i:02d}": History({"heart_rate": days(rising)}) for i in range(30)}
    quality = DataQuality(rows_input=72, rows_valid=72, rows_rejected=0)
    brief = build_brief(facts(), quality, file_trends(histories, 28))
    assert len(brief.trends) == 20
    assert len({t.participant for t in brief.trends}) == 20
    prompt = build_prompt(brief.as_json(), "json")
    assert 1 <= len(prompt.facts["trends"]) <= 20
    assert "trends of daily medians across uploads" in prompt.system
