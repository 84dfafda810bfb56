"""Severity first in the brief, the builtin analyst, the report model and the alert: the worst
reading always leads, blood pressure is a pair, wording states the criterion, nothing is
reassuring while a high-severity finding exists (issue 13 items 2, 3, 8 and the wording)."""

from __future__ import annotations

import re
from typing import Any

from healthpipe.analysts.builtin import BuiltinAnalyst
from healthpipe.domain.brief import (
    NOT_ASSESSABLE,
    assessment,
    build_brief,
    finding_sentence,
    plural,
    risk_level,
)
from healthpipe.domain.documents import (
    Analysis,
    AnalysisFacts,
    AnalystProvenance,
    Brief,
    DataQuality,
    Participant,
    SevereFinding,
)
from healthpipe.report.alert import build_alert_model
from healthpipe.report.labels import BP_CATEGORY_LABELS, KIND_INFO, kind_label
from healthpipe.report.model import build_report_model, flagged_share

REASSURING = re.compile(r"no urgent action|routine monitoring|no action (is )?needed", re.I)
QUALITY = {"rows_input": 124, "rows_valid": 124, "rows_rejected": 0, "reasons": {}}


def user(
    uid: str, readings: int, *, high: int = 0, medium: int = 0, low: int = 0
) -> dict[str, Any]:
    worst = "high" if high else "medium" if medium else "low" if low else "none"
    total = high + medium + low
    return {
        "user_id": uid,
        "readings": readings,
        "anomalies": total,
        "high": high,
        "medium": medium,
        "low": low,
        "episodes": 0,
        "worst": worst,
        "risk_score": round((3 * high + 2 * medium + low) / readings, 4),
        "readings_flagged": total,
    }


def spo2_85(uid: str = "zed") -> dict[str, Any]:
    return {
        "user_id": uid,
        "high": 1,
        "findings": [
            {
                "metric": "spo2",
                "kind": "low_spo2_news2_3",
                "count": 1,
                "value": 85,
                "event_time": "2026-01-03T10:00:00+00:00",
            }
        ],
    }


def facts(
    users: list[dict[str, Any]],
    high: list[dict[str, Any]] | None = None,
    *,
    episodes: dict[str, Any] | None = None,
    readings: int = 124,
) -> dict[str, Any]:
    """Analysis facts shaped as `dataops/analysis/` + `dataops/severe.py` produce them."""
    n_high = sum(u["high"] for u in users)
    n_low = sum(u["low"] for u in users)
    stats = {"count": readings, "mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}
    return {
        "readings": readings,
        "time_range": {"start": "2026-01-03T08:00:00+00:00", "end": "2026-01-04T00:00:00+00:00"},
        "metrics": {
            m: dict(stats)
            for m in ("heart_rate", "spo2", "steps", "temp_c", "systolic_bp", "diastolic_bp")
        },
        "news2_partial": {
            "distribution": {"0": readings},
            "readings_score_5_or_more": 0,
            "readings_score_7_or_more": 0,
        },
        "bp_categories": {"normal": readings},
        "anomalies": {
            "total": n_high + n_low,
            "readings_flagged": n_high + n_low,
            "by_severity": {"high": n_high, "low": n_low},
            "by_kind": {"hypertension_stage_1": n_low, "low_spo2_news2_3": n_high},
            "by_metric": {},
            "by_rule": {},
            "top": [],
            "timeline": [],
        },
        "episodes": episodes or {"total": 0, "by_kind": {}, "list": []},
        "users": {"total": len(users), "flagged": len(users), "top": users},
        "red_scores": {"readings": n_high, "by_metric": {"spo2": n_high} if n_high else {}},
        "high_participants": {"total": len(high or []), "list": high or []},
        "headline": {"by_kind": {"hypertension_stage_1": n_low, "low_spo2_news2_3": n_high}},
    }


def brief_of(f: dict[str, Any]) -> dict[str, Any]:
    found = AnalysisFacts.model_validate(f)
    return build_brief(found, DataQuality.model_validate(QUALITY)).as_json()


def typed(analysis: dict[str, Any]) -> Analysis:
    return Analysis.model_validate(analysis)


def analysis_of(f: dict[str, Any]) -> dict[str, Any]:
    found = AnalysisFacts.model_validate(f)
    report = BuiltinAnalyst().analyze(Brief.model_validate(brief_of(f)))
    return {
        "dataset_id": "d1",
        "created_at": "2026-01-05T00:00:00+00:00",
        "source": {"key": "raw/vitals.csv"},
        "data_quality": QUALITY,
        "worst_severity": "high" if f["anomalies"]["by_severity"].get("high") else "low",
        **f,
        "analyst": AnalystProvenance.model_validate(report, from_attributes=True).as_json(),
        "usage": report.usage.model_dump(),
        "grounding": report.grounding,
        **report.result.model_dump(),
        "assessment": assessment(found).as_json(),
        "risk_level": risk_level(found, report.result.risk_level),
    }


def diluted() -> dict[str, Any]:
    """12 participants of 2 readings (one at stage 1) ranked by rate before one participant of
    100 readings with one SpO2 of 85 % (the issue's case, as the old ranking ordered it)."""
    users = [user(f"u{i:02d}", 2, low=1) for i in range(12)] + [user("zed", 100, high=1)]
    return facts(users, [spo2_85()])


def test_high_participant_outside_the_top_ten_leads_the_brief_and_is_named() -> None:
    brief = brief_of(diluted())
    first = brief["participants_at_risk"][0]
    assert first["worst"] == "high"
    (named,) = brief["high_severity"]["list"]
    assert named["participant"] == first["participant"] == "P01"
    assert "SpO2 85 % at 2026-01-03 10:00 UTC" in named["sentence"]


def test_builtin_names_the_reading_and_never_reassures_while_high_exists() -> None:
    analysis = analysis_of(diluted())
    texts = [*analysis["insights"], *analysis["recommendations"], analysis["summary"]]
    assert any("SpO2 85 %" in t and "P01" in t for t in analysis["insights"]), texts
    assert not [t for t in texts if REASSURING.search(t)], texts
    assert any(t.startswith("Review first") and "P01" in t for t in analysis["recommendations"])
    assert analysis["risk_level"] in {"high", "critical"}


def test_red_scores_are_counted_in_the_insights() -> None:
    analysis = analysis_of(diluted())
    (news2,) = [t for t in analysis["insights"] if "red score" in t]
    assert news2.startswith("1 reading had a NEWS2 red score")


def test_counts_are_pluralised() -> None:
    assert plural(1, "finding") == "1 finding"
    assert plural(2, "finding") == "2 findings"
    analysis = analysis_of(diluted())
    text = " ".join(analysis["insights"]) + analysis["summary"]
    assert "1 findings" not in text and "1 high-severity findings" not in text
    assert "1 finding was high severity" in text


def test_longest_episode_is_the_whole_files_not_the_top_participants() -> None:
    # GIVEN twelve participants ahead in the ranking and the longest episode in the 13th
    users = [user(f"u{i:02d}", 2, low=1) for i in range(12)] + [user("zed", 100, low=12)]
    episode = {
        "metric": "heart_rate",
        "kind": "raised_heart_rate_news2_1",
        "severity": "low",
        "readings": 12,
        "duration_s": 7200,
        "peak_value": 104,
    }
    short = {**episode, "user_id": "u00", "readings": 3, "duration_s": 600}
    listed = [{**short, "user_id": "u00"}, {**episode, "user_id": "zed"}]
    f = facts(
        users, episodes={"total": 2, "by_kind": {"raised_heart_rate_news2_1": 2}, "list": listed}
    )
    # WHEN the builtin analyst writes about episodes
    analysis = analysis_of(f)
    (text,) = [t for t in analysis["insights"] if "sustained episode" in t]
    # THEN the longest named is the 12-reading one
    assert "over 12 readings" in text, text
    assert "over 3 readings" not in text


def test_not_assessable_file_is_never_low_risk() -> None:
    f = facts([], readings=0)
    for m in f["metrics"].values():
        m["count"] = 0
    analysis = analysis_of(f)
    assert analysis["risk_level"] == NOT_ASSESSABLE
    assert analysis["assessment"]["status"] == NOT_ASSESSABLE
    assert "low" not in analysis["summary"].lower().split("risk is", 1)[1][:5]
    model = build_report_model(typed(analysis), secret="s")
    assert model.risk_level == NOT_ASSESSABLE and model.worst_severity == NOT_ASSESSABLE
    assert NOT_ASSESSABLE in model.subject


def test_report_table_ranks_by_worst_severity_and_flagged_share_is_of_readings() -> None:
    model = build_report_model(typed(analysis_of(diluted())), secret="s", top_users=10)
    assert model.users[0].worst == "high" and model.users[0].ref == "P01"
    assert model.users[0].flagged_pct == "1.0%"
    # three findings on one reading of two: 50 %, never 150 %
    three = {"user_id": "u", "readings": 2, "anomalies": 3, "readings_flagged": 1}
    assert flagged_share(Participant.model_validate(three)) == "50.0%"
    assert model.high and "SpO2 85 % at 2026-01-03 10:00 UTC" in model.high[0].readings[0]


def test_high_participant_beyond_the_table_limit_is_still_listed() -> None:
    users = [user(f"u{i:02d}", 2, low=1) for i in range(12)] + [user("zed", 100, high=1)]
    f = facts(users, [spo2_85()])
    f["users"]["top"] = users  # as an old analysis ordered them: zed last
    model = build_report_model(typed(analysis_of(f)), secret="s", top_users=5)
    assert any(row.worst == "high" for row in model.users)


def test_blood_pressure_is_a_pair_naming_the_part_that_triggered() -> None:
    crisis = {
        "metric": "blood_pressure",
        "kind": "hypertensive_crisis",
        "value": 170,
        "systolic": 170,
        "diastolic": 121,
        "event_time": "2026-01-03T10:00:00+00:00",
    }
    text = finding_sentence(SevereFinding.model_validate({"count": 1, **crisis}))
    assert "170/121 mmHg" in text and "diastolic above 120" in text
    stage_2 = {**crisis, "kind": "hypertension_stage_2", "systolic": 118, "diastolic": 95}
    sentence = finding_sentence(SevereFinding.model_validate({"count": 1, **stage_2}))
    assert "118/95 mmHg" in sentence and "diastolic ≥ 90" in sentence


def test_alert_groups_findings_by_participant_worst_first() -> None:
    f = diluted()
    f["anomalies"]["top"] = [
        {
            "user_id": "zed",
            "metric": "spo2",
            "kind": "low_spo2_news2_3",
            "severity": "high",
            "value": 85,
            "event_time": "2026-01-03T10:00:00+00:00",
        }
    ] + [
        {
            "user_id": f"u{i:02d}",
            "metric": "blood_pressure",
            "kind": "hypertension_stage_1",
            "severity": "low",
            "value": 132,
            "event_time": "2026-01-03T08:00:00+00:00",
        }
        for i in range(3)
        for _ in range(2)
    ]
    model = build_alert_model(typed(analysis_of(f)), secret="s", threshold="low", report_key="r")
    people = [row["who"] for row in model.findings]
    assert len(people) == len(set(people)) == 4
    assert model.findings[0]["severity"] == "high"
    assert "SpO2 85 %" in model.findings[0]["readings"][0]
    assert model.findings[1]["count"].startswith("2 findings")


def test_wording_states_the_criterion_the_code_applies() -> None:
    assert "and/or" in BP_CATEGORY_LABELS["hypertensive_crisis"]
    assert "above 180" in BP_CATEGORY_LABELS["hypertensive_crisis"]
    assert "above 120" in BP_CATEGORY_LABELS["hypertensive_crisis"]
    for kind, (label, _, criterion) in KIND_INFO.items():
        if "35.1–36.0" in criterion:
            assert "hypothermia" not in label.lower(), kind
        if "101–110" in criterion:
            assert "hypotension" not in label.lower(), kind
    assert "Hypothermia" not in kind_label("low_temperature_news2_1")


def test_baseline_finding_on_a_clinical_reading_is_not_a_second_headline() -> None:
    # GIVEN three red readings that also deviate from the participant's baseline
    users = [user("p1", 20, high=3, medium=3)]
    f = facts(users, [spo2_85("p1")])
    f["anomalies"]["by_severity"] = {"high": 3, "medium": 3}
    f["anomalies"]["by_kind"] = {"baseline_deviation": 3, "low_spo2_news2_3": 3}
    f["headline"] = {"by_kind": {"low_spo2_news2_3": 3}, "by_severity": {"high": 3}}
    # WHEN the builtin analyst writes its insights
    insights = analysis_of(f)["insights"]
    # THEN the baseline does not lead and is not counted again
    text = " ".join(insights)
    assert "3 findings were high severity, 0 medium" in text
    assert "own baseline" not in text and "deviated" not in text
    assert any(t.startswith("The most frequent clinical finding was low SpO2") for t in insights)


def test_a_vital_without_readings_is_not_assessable_not_normal() -> None:
    # GIVEN a file where no reading has an SpO2 (a profile that makes it optional)
    f = diluted()
    f["metrics"]["spo2"] |= {"count": 0, "mean": None, "min": None, "max": None}
    analysis = analysis_of(f)
    # THEN the insights and the report's vital table say so
    assert any(
        t.startswith("SpO2: not assessable: no valid readings") for t in analysis["insights"]
    )
    model = build_report_model(typed(analysis), secret="s")
    (spo2,) = [m for m in model.metrics if m.name.startswith("SpO2")]
    assert spo2.band == NOT_ASSESSABLE


def test_longest_episode_beyond_the_listed_ones_is_the_one_named() -> None:
    # GIVEN 150 episodes of which the list holds the most severe, and the longest is not listed
    users = [user("p1", 100, high=3), user("p2", 300, low=40)]
    short = {
        "user_id": "p1",
        "metric": "spo2",
        "kind": "low_spo2_news2_3",
        "severity": "high",
        "readings": 3,
        "duration_s": 600,
        "peak_value": 88,
    }
    longest = {
        **short,
        "user_id": "p2",
        "metric": "heart_rate",
        "kind": "raised_heart_rate_news2_1",
        "severity": "low",
        "readings": 40,
        "duration_s": 36000,
        "peak_value": 104,
    }
    f = facts(
        users,
        [spo2_85("p1")],
        episodes={"total": 150, "by_kind": {}, "list": [short], "longest": longest},
    )
    # WHEN the builtin analyst writes about episodes
    (text,) = [t for t in analysis_of(f)["insights"] if "sustained episode" in t]
    # THEN it names the whole file's longest, as the longest
    assert "the longest was raised heart rate (NEWS2 1; heart rate 91–110 bpm)" in text, text
    assert "over 40 readings" in text


def test_alert_says_how_many_participants_it_leaves_out() -> None:
    users = [user(f"p{i:02d}", 10, high=1) for i in range(12)]
    f = facts(users, [spo2_85(f"p{i:02d}") for i in range(12)])
    model = build_alert_model(typed(analysis_of(f)), secret="s", threshold="high", report_key="r")
    assert len(model.findings) == 10 and model.more_participants == 2
    assert model.flagged_text == "12 findings"
    one = facts([user("p1", 10, high=1)], [spo2_85("p1")])
    single = build_alert_model(
        typed(analysis_of(one)), secret="s", threshold="high", report_key="r"
    )
    assert single.flagged_text == "1 finding" and single.more_participants == 0
