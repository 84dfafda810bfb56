"""The report's "Compared with the last 28 days" section, on a hand-made analysis (no
pipeline run, no chart): flagged trends with their criterion and a sparkline."""

from __future__ import annotations

from typing import Any

from healthpipe.domain.documents import Analysis
from healthpipe.domain.identity import pseudonym
from healthpipe.report.model import build_report_model
from healthpipe.report.render import render_html, render_text
from healthpipe.report.trends import spark_blocks, spark_points

SECRET = "test-secret"
HOSTILE = '<script>alert("x")</script>'


def analysis(trends: dict[str, Any] | None) -> Analysis:
    doc: dict[str, Any] = {
        "dataset_id": "0123456789abcdef",
        "created_at": "2025-11-25T10:00:00+00:00",
        "source": {"key": "raw/day-30.csv"},
        "data_quality": {"rows_input": 48, "rows_valid": 48, "rows_rejected": 0},
        "readings": 48,
        "users": {
            "total": 2,
            "top": [
                {"user_id": "user_003", "readings": 24},
                {"user_id": "user_009", "readings": 24},
            ],
        },
    }
    if trends is not None:
        doc["trends"] = trends
    return Analysis.model_validate(doc)


def trend(user_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "metric": "heart_rate",
        "rule": "resting_hr_rise",
        "criterion": "daily median heart rate rising ≥ 10 bpm over 14 days",
        "span_days": 14,
        "days": 14,
        "first_day": "2025-11-17",
        "last_day": "2025-11-30",
        "slope_per_day": 1.161,
        "change": 16.3,
        "start": 74.1,
        "end": 89.3,
        "daily": [74.0, 75.0, 78.0, 80.0, 84.0, 86.0, 90.0],
        **overrides,
    }


def rendered(doc: Analysis) -> tuple[str, str]:
    model = build_report_model(doc, secret=SECRET)
    return render_text(model), render_html(model, [], inline_images=True)


def test_flagged_trends_are_listed_with_criterion_and_sparkline() -> None:
    doc = analysis(
        {
            "window_days": 28,
            "participants_assessed": 2,
            "flagged": [trend("user_003"), trend("user_009", criterion=HOSTILE)],
        }
    )
    text, html = rendered(doc)
    assert "COMPARED WITH THE LAST 28 DAYS" in text
    assert "Compared with the last 28 days" in html
    line = next(x for x in text.splitlines() if pseudonym("user_003", SECRET) in x and "+16.3" in x)
    assert "+16.3 bpm over 14 days" in line and "from 74.1 to 89.3 bpm" in line
    assert "flagged: daily median heart rate rising ≥ 10 bpm over 14 days" in line
    assert spark_blocks([74.0, 75.0, 78.0, 80.0, 84.0, 86.0, 90.0]) in line
    assert html.count("<polyline") == 2
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert "user_003" not in text and "user_003" not in html


def test_no_flagged_trend_says_so_without_reassuring_about_readings() -> None:
    text, html = rendered(analysis({"window_days": 28, "participants_assessed": 2}))
    assert "No trend crossed a threshold among 2 participants" in text
    assert "single readings are judged by the findings above" in text
    assert "<polyline" not in html


def test_a_first_file_says_trends_are_not_assessed_yet() -> None:
    text, _ = rendered(analysis({"window_days": 28, "participants_assessed": 0}))
    assert "Not assessed yet: no participant has enough days with readings" in text


def test_an_analysis_without_trends_has_no_section() -> None:
    text, html = rendered(analysis(None))
    assert "COMPARED WITH" not in text and "Compared with" not in html


def test_sparkline_points_span_the_box() -> None:
    assert spark_points([1.0, 3.0, 2.0], width=12, height=6) == "1.0,5.0 6.0,1.0 11.0,3.0"
    assert spark_points([]) == ""
    assert spark_blocks([1.0, 1.0]) == "▁▁"
