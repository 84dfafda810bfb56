"""An episode's worst blood pressure is shown as a pair even when the reading lacks a part
(a crisis found on the diastolic with no systolic) or the analysis predates the pair."""

from __future__ import annotations

from typing import Any

from healthpipe.domain.documents import Episode
from healthpipe.report.model import worst_value_text

COMMON = {"user_id": "u1", "severity": "high", "readings": 3}


def episode(**values: Any) -> Episode:
    return Episode.model_validate(
        {"kind": "hypertensive_crisis", "metric": "blood_pressure", "worst": "highest"}
        | COMMON
        | values
    )


def test_a_complete_pair_is_shown_as_the_pair() -> None:
    shown = worst_value_text(episode(peak_value=170, worst_systolic_bp=170, worst_diastolic_bp=121))
    assert shown == "highest 170/121 mmHg"


def test_a_missing_part_is_a_dash_never_a_lone_number() -> None:
    shown = worst_value_text(
        episode(peak_value=None, worst_systolic_bp=None, worst_diastolic_bp=125)
    )
    assert shown == "highest –/125 mmHg"


def test_an_analysis_without_the_pair_marks_its_value_as_the_systolic() -> None:
    assert worst_value_text(episode(peak_value=172)) == "highest 172/– mmHg"


def test_other_vitals_keep_their_single_value() -> None:
    low = {"kind": "low_spo2_news2_3", "metric": "spo2", "worst": "lowest", "peak_value": 85}
    assert worst_value_text(Episode.model_validate(low | COMMON)) == "lowest 85 %"
