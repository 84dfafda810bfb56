"""Reading a model's answer: tolerant of small deviations, strict about the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from healthpipe.analysts.output import parse_insight_set
from healthpipe.ports import AnalystError

ANSWER: dict[str, Any] = {
    "insights": ["951 readings."],
    "recommendations": ["Review P01."],
    "summary": "Risk is high.",
    "risk_level": "high",
}


@pytest.mark.parametrize(
    "raw",
    [
        ANSWER,
        json.dumps(ANSWER),
        "```json\n" + json.dumps(ANSWER) + "\n```",
        "Sure! Here is the analysis: " + json.dumps(ANSWER) + " Let me know.",
        {"record_health_insights": ANSWER},  # wrapped in one outer key
        {**ANSWER, "confidence": 0.9, "notes": "extra fields are ignored"},
        {
            "Insights": "951 readings.",
            "Recommendations": [{"text": "Review P01."}],
            "Summary": ["Risk", "is high."],
            "Risk Level": " High ",
        },
    ],
)
def test_accepted_shapes(raw: Any) -> None:
    result = parse_insight_set(raw)
    assert result.insights == ["951 readings."]
    assert result.recommendations == ["Review P01."]
    assert result.risk_level == "high"


def test_medium_risk_means_moderate_and_lists_are_capped() -> None:
    raw = {**ANSWER, "risk_level": "Medium", "insights": [f"{i} readings." for i in range(30)]}
    result = parse_insight_set(raw)
    assert result.risk_level == "moderate" and len(result.insights) == 12


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        ("I cannot help with this request.", "malformed_output", "no JSON object"),
        ('{"insights": ["951 readings."], ', "malformed_output", "invalid JSON"),
        ("[1, 2, 3]", "malformed_output", "expected a JSON object"),
        ({k: v for k, v in ANSWER.items() if k != "summary"}, "schema_invalid", "summary"),
        ({**ANSWER, "risk_level": "catastrophic"}, "schema_invalid", "risk_level"),
        ({**ANSWER, "insights": []}, "schema_invalid", "insights"),
        ({**ANSWER, "recommendations": 42}, "schema_invalid", "recommendations"),
    ],
)
def test_rejected_shapes(raw: Any, reason: str, detail: str) -> None:
    with pytest.raises(AnalystError) as caught:
        parse_insight_set(raw)
    assert caught.value.reason == reason and detail in caught.value.detail
    assert caught.value.retryable  # a second answer may be better
