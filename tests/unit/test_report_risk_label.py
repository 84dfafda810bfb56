"""The report's risk label states what it is computed from (this file's readings, by the
builtin rule's criterion) and, when trends across uploads are flagged, counts them beside
it: a "low" at the top of a report must not read as "all clear" above a trend to review.
Hand-made analyses, no pipeline run, no chart."""

from __future__ import annotations

from typing import Any

from test_report_render import make_analysis, typed
from test_report_trends import HOSTILE, SECRET, analysis, rendered, trend

from healthpipe.domain.identity import pseudonym
from healthpipe.report.model import build_report_model
from healthpipe.report.render import render_html, render_text

LOW = "Risk from this file's readings: <strong>low</strong> (no high- or medium-severity finding)"


def flagged(*user_ids: str, **overrides: Any) -> dict[str, Any]:
    return {
        "window_days": 28,
        "participants_assessed": 2,
        "flagged": [trend(u, **overrides) for u in user_ids],
    }


def header(text: str) -> str:
    return text.splitlines()[2]


def test_low_risk_with_flagged_trends_says_both_in_the_header() -> None:
    text, html = rendered(analysis(flagged("user_003", "user_009", criterion=HOSTILE)))
    assert header(text) == (
        "Worst severity: none · risk from this file's readings: low (no high- or "
        "medium-severity finding) · 2 trends to review (compared with the last 28 days)"
    )
    line = f"{LOW} · <strong>2 trends to review (compared with the last 28 days)</strong></p>"
    assert line in html
    # above the summary and the trends section, not after them
    assert html.index(line) < html.index("Executive summary")
    assert html.index(line) < html.index("Compared with the last 28 days</h2>")
    assert "Overall risk" not in html and "overall risk" not in text
    assert HOSTILE not in html and "&lt;script&gt;" in html
    for part in (text, html):
        assert "user_003" not in part and pseudonym("user_003", SECRET) in part


def test_the_email_subject_counts_flagged_trends_beside_the_worst_severity() -> None:
    model = build_report_model(analysis(flagged("user_003", "user_009")), secret=SECRET)
    assert model.subject.endswith(" | worst severity: none | 2 trends to review")
    model = build_report_model(analysis(None), secret=SECRET)
    assert model.subject.endswith(" | worst severity: none")


def test_one_flagged_trend_is_counted_in_the_singular() -> None:
    text, _ = rendered(analysis(flagged("user_003")))
    assert header(text).endswith(" · 1 trend to review (compared with the last 28 days)")


def test_without_flagged_trends_the_label_states_its_criterion_only() -> None:
    text, html = rendered(analysis({"window_days": 28, "participants_assessed": 2}))
    assert header(text) == (
        "Worst severity: none · risk from this file's readings: low (no high- or "
        "medium-severity finding)"
    )
    assert f"{LOW}</p>" in html and "to review" not in header(text)


def test_high_findings_are_labelled_with_the_rules_criterion() -> None:
    # 41 high findings of 1,200 readings (3.4 %), no crisis episode: the rule's "high"
    model = build_report_model(typed(make_analysis()), secret=SECRET)
    text, html = render_text(model), render_html(model, [], inline_images=True)
    assert header(text) == (
        "Worst severity: high · risk from this file's readings: high "
        "(at least one high-severity finding)"
    )
    assert (
        "Risk from this file's readings: <strong>high</strong> "
        "(at least one high-severity finding)</p>"
    ) in html


def test_a_level_above_the_rule_is_the_analysts_and_names_the_rule() -> None:
    crisis = make_analysis(risk_level="critical")
    model = build_report_model(typed(crisis), secret=SECRET)
    assert model.risk_basis == (
        "the analyst's judgement; the rule gives high: at least one high-severity finding"
    )
    crisis["episodes"]["by_kind"] = {"hypertensive_crisis": 1}
    model = build_report_model(typed(crisis), secret=SECRET)
    assert model.risk_basis == "a sustained hypertensive-crisis episode"


def test_a_file_without_valid_readings_has_no_criterion_but_keeps_its_trends() -> None:
    doc = analysis(flagged("user_003")).model_copy(update={"readings": 0})
    text, _ = rendered(doc)
    assert header(text) == (
        "Not assessable: no valid readings · risk from this file's readings: not assessable: "
        "no valid readings · 1 trend to review (compared with the last 28 days)"
    )
