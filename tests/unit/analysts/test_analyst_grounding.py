"""Grounding: numbers the analyst writes must be numbers of the facts it was given."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import as_brief
from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.analysts.grounding import (
    check_grounding,
    fact_numbers,
    quoted_numbers,
    unsupported_numbers,
)
from healthpipe.domain.insights import InsightSet

FACTS: dict[str, Any] = {
    "readings": 951,
    "anomalies": {"total": 2426, "readings_flagged": 928, "by_kind": {"hypertension_stage_2": 183}},
    "metrics": {"heart_rate": {"mean": 140.24, "max": 300.0}, "steps": {"mean": 2499.25}},
    "shares_pct": {"readings_flagged": 97.6, "rows_rejected": 4.9},
    "reference": {"news2_band_upper_limits": {"spo2": [91, 93, 95]}},
    "participants_at_risk": [{"participant": "P01", "risk_score": 4.74}],
}


def supported(text: str) -> bool:
    return unsupported_numbers(text, fact_numbers(FACTS))[1] == []


@pytest.mark.parametrize(
    "text",
    [
        "928 of 951 readings (97.6%) had a finding.",  # exact numbers and a given share
        "2,426 findings in total.",  # thousands separator
        "Mean heart rate was 140 bpm.",  # rounded to fewer decimals
        "Mean heart rate was 140.2 bpm, peaking at 300.",
        "Mean heart rate was 140.2397 bpm.",  # more digits than given: still within rounding
        "Around 2,500 steps on average.",  # a round number read at its precision
        "183 of 951 readings (19.24%) were stage 2 hypertension.",  # share of quoted numbers
        "183 of 951 readings (19%) were stage 2.",  # the same share, rounded
        "SpO2 of 91% or less needs review; P01 scored 4.74 on NEWS2.",  # labels are not numbers
        "4.9% of rows failed validation and 0 were duplicates.",
    ],
)
def test_numbers_present_in_the_facts_are_supported(text: str) -> None:
    assert supported(text), unsupported_numbers(text, fact_numbers(FACTS))


@pytest.mark.parametrize(
    ("text", "invented"),
    [
        ("Mean heart rate was 152.7 bpm.", "152.7"),
        ("Mean heart rate was 140.3 bpm.", "140.3"),  # off by more than rounding
        ("2,427 findings in total.", "2,427"),
        ("Findings rose 35% since last week.", "35%"),
        ("Heart rate averaged 140 bpm over 24 hours.", "24"),
        ("Around 2,600 steps on average.", "2,600"),
        ("183 readings (25.0%) were stage 2 hypertension.", "25.0%"),
    ],
)
def test_invented_numbers_are_unsupported(text: str, invented: str) -> None:
    assert unsupported_numbers(text, fact_numbers(FACTS))[1] == [invented]


def test_quoted_numbers_ignores_digits_inside_words() -> None:
    quoted = quoted_numbers("P01 and P12 had NEWS2 >= 5 and SpO2 91%; BP 180/120; 1,024.5")
    assert [(q.text, q.percent) for q in quoted] == [
        ("5", False),
        ("91%", True),
        ("180", False),
        ("120", False),
        ("1,024.5", False),
    ]


def insight_set(insights: list[str], recommendations: list[str], summary: str) -> InsightSet:
    return InsightSet(
        insights=insights, recommendations=recommendations, summary=summary, risk_level="high"
    )


def test_unsupported_insights_are_dropped_and_recorded() -> None:
    result = insight_set(
        ["928 of 951 readings (97.6%) had a finding.", "Mean heart rate was 152.7 bpm."],
        ["Review P01 first.", "Repeat the 3 readings taken at 04:15."],
        "2,426 findings across 951 readings.",
    )
    grounding = check_grounding(result, FACTS)
    assert grounding.ok and grounding.result is not None
    assert grounding.result.insights == ["928 of 951 readings (97.6%) had a finding."]
    assert grounding.result.recommendations == ["Review P01 first."]
    record = grounding.record()
    assert record["checked"] == 5
    assert [(d["field"], d["unsupported"]) for d in record["dropped"]] == [
        ("insights", ["152.7"]),
        ("recommendations", ["3", "04", "15"]),
    ]


def test_an_unsupported_summary_rejects_the_output() -> None:
    result = insight_set(["951 readings."], ["Review P01."], "Risk doubled to 4,000 findings.")
    grounding = check_grounding(result, FACTS)
    assert not grounding.ok and grounding.result is None
    assert grounding.problem is not None and "summary" in grounding.problem


def test_too_many_drops_reject_the_output() -> None:
    result = insight_set(
        ["951 readings.", "12 new cases.", "77.7% worse.", "42 alerts."],
        ["Review P01.", "Call 555 0100."],
        "951 readings.",
    )
    grounding = check_grounding(result, FACTS)
    assert not grounding.ok and grounding.problem == "4 of 7 texts quote unsupported numbers"


def test_a_list_emptied_by_drops_rejects_the_output() -> None:
    result = insight_set(["951 readings."], ["Recheck in 48 hours."], "951 readings.")
    assert not check_grounding(result, FACTS).ok


def test_builtin_text_is_always_grounded_in_its_brief(
    seed_briefs: dict[str, dict[str, Any]], synthetic_brief: dict[str, Any]
) -> None:
    for brief in [*seed_briefs.values(), synthetic_brief]:
        report = BuiltinAnalyst().analyze(as_brief(brief))
        assert report.grounding["dropped"] == [], report.grounding
        assert report.grounding["checked"] == (
            len(report.result.insights) + len(report.result.recommendations) + 1
        )
        assert report.grounding["numbers"] > 10
