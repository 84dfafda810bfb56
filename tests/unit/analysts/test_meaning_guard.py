"""The meaning guard: a model may word the findings, never change what they mean.

Issue 13 item 9: a reply saying the cohort is healthy, naming diagnoses, prescribing drugs
and setting `risk_level` low was accepted unchanged while the computed worst severity was
high; misattributed numbers and numbers in words passed; a bare URL reached both e-mail
parts. Each case below failed on the code before the guard.
"""

from __future__ import annotations

from typing import Any

import pytest
from meaning_corpus import FAIL, PASS
from test_trend_facts import brief_with_trends

from conftest import as_brief
from healthpipe.analysts.builtin import risk_level
from healthpipe.analysts.grounding import check_llm_output, fact_numbers, unsupported_numbers
from healthpipe.analysts.guarded import GuardedAnalyst
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.analysts.meaning import guard_text, has_high_findings, review_reasons
from healthpipe.analysts.sanitize import strip_markup
from healthpipe.domain.insights import RISK_LEVELS, InsightSet
from healthpipe.ports import Completion, LanguageModel, Prompt

HIGH = ["high-severity findings"]


def test_the_corpus_is_large_and_balanced() -> None:
    assert len(PASS) + len(FAIL) >= 40
    assert len(PASS) == len(FAIL)


@pytest.mark.parametrize("sentence", PASS)
def test_clinically_sound_sentences_pass(sentence: str) -> None:
    check = guard_text("insights", sentence, review=HIGH)
    assert check.removed == [] and check.kept == sentence


@pytest.mark.parametrize(("sentence", "reason"), FAIL)
def test_unsafe_sentences_are_removed_with_their_reason(sentence: str, reason: str) -> None:
    check = guard_text("insights", sentence, review=HIGH)
    assert check.kept == ""
    (removed,) = check.removed
    assert removed["reason"] == reason and removed["text"] == sentence


@pytest.mark.parametrize(("sentence", "reason"), FAIL)
def test_only_reassurance_depends_on_something_to_review(sentence: str, reason: str) -> None:
    check = guard_text("insights", sentence, review=[])
    assert bool(check.removed) == (reason != "reassurance")


def test_only_the_unsafe_statement_of_a_text_is_removed() -> None:
    check = guard_text(
        "summary",
        "P01 had an SpO2 of 85 %. All other readings were normal. Review P01 first.",
        review=HIGH,
    )
    assert check.kept == "P01 had an SpO2 of 85 %. Review P01 first."
    assert [r["text"] for r in check.removed] == ["All other readings were normal."]


FACTS: dict[str, Any] = {
    "readings": 400,
    "metrics": {
        "heart_rate": {"mean": 72.4, "min": 35.0, "max": 131.0},
        "systolic_bp": {"mean": 128.2, "max": 230.0},
        "spo2": {"mean": 96.1, "min": 85.0},
    },
    "episodes": {"top": [{"participant": "P01", "metric": "diastolic_bp", "peak_value": 121}]},
}


def bad_numbers(text: str) -> list[str]:
    return unsupported_numbers(text, fact_numbers(FACTS))[1]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("Mean heart rate was 230 bpm.", ["230"]),  # 230 is a systolic value
        ("Heart rate peaked at 121.", ["121"]),  # 121 is a diastolic peak
        ("SpO2 fell to 131 %.", ["131 %"]),  # 131 is a heart rate
        ("Mean heart rate was two hundred and thirty bpm.", ["two hundred and thirty"]),
        ("Blood pressure peaked at 131/85 mmHg.", ["131", "85"]),
        ("Four hundred and one readings were valid.", ["Four hundred and one"]),
        ("Mean SpO2 was ninety-four percent.", ["ninety-four percent"]),
    ],
)
def test_a_number_must_be_a_fact_of_the_vital_it_is_said_of(text: str, bad: list[str]) -> None:
    assert bad_numbers(text) == bad


@pytest.mark.parametrize(
    "text",
    [
        "Systolic pressure peaked at 230 mmHg.",
        "Mean heart rate was 72 bpm, with a minimum of 35.",
        "P01 had a blood pressure of 230/121 mmHg.",
        "SpO2 fell to 85 % in P01.",
        "Mean heart rate was seventy-two bpm over four hundred readings.",
        "Mean temperature could not be assessed; one participant had no readings.",
        "Mean SpO2 was ninety-six point one percent.",
        "Heart rate findings: 230 of 400 readings.",  # a count is of no vital in particular
    ],
)
def test_numbers_of_the_right_vital_and_counts_pass(text: str) -> None:
    assert bad_numbers(text) == []


def test_urls_and_markup_are_stripped_to_plain_prose() -> None:
    stripped = strip_markup(
        "**Review** [P01](https://evil.example/p01) now <b>today</b>, see "
        "https://evil.example/x, www.evil.example, evil-health.com/page or help@evil.example."
    )
    assert stripped.text == "Review P01 now today, see, or."
    assert stripped.kinds == {"markup": 5, "url": 4}  # the link's URL goes with its markup
    for kept in ("Mean 36.5 °C, e.g. at rest.", "SpO2 of 85 % (NEWS2 3)."):
        assert strip_markup(kept).text == kept


def unsafe_answer(brief: dict[str, Any], good: dict[str, Any]) -> InsightSet:
    """The issue's reply: healthy cohort, diagnoses, a drug, low risk, a wrong vital, a URL."""
    heart_max = brief["metrics"]["systolic_bp"]["max"]
    return InsightSet.model_validate(
        {
            "insights": [
                *good["insights"],
                "All readings were normal and the cohort is healthy.",
                "The pattern suggests atrial fibrillation and early sepsis.",
                f"Mean heart rate was {heart_max} bpm.",
            ],
            "recommendations": [
                *good["recommendations"],
                "Start anticoagulants for P01.",
                "No urgent action is needed; continue routine monitoring.",
            ],
            "summary": f"{good['summary']} See https://evil.example/r for details. "
            "All vital signs are normal.",
            "risk_level": "low",
        }
    )


def test_an_unsafe_reply_is_made_safe_and_every_removal_recorded(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    # GIVEN a brief with high findings and the unsafe reply
    assert synthetic_brief["anomalies"]["by_severity"]["high"] > 0
    answer = unsafe_answer(synthetic_brief, good_answer)
    # WHEN the reply goes through the LLM output check
    checked = check_llm_output(answer, synthetic_brief, as_brief(synthetic_brief))
    # THEN only the sound statements remain, risk is raised, and each removal is recorded
    assert checked.ok and checked.result is not None
    result = checked.result
    assert result.insights == good_answer["insights"]
    assert result.recommendations == good_answer["recommendations"]
    assert result.summary == good_answer["summary"] + " See for details."
    computed = risk_level(as_brief(synthetic_brief))
    assert RISK_LEVELS.index(result.risk_level) >= RISK_LEVELS.index(computed)
    assert RISK_LEVELS.index(result.risk_level) >= RISK_LEVELS.index("high")
    record = checked.record()
    assert record["risk"] == {
        "model": "low",
        "computed": result.risk_level,
        "reported": result.risk_level,
        "raised": True,
    }
    reasons = sorted(d["reason"] for d in record["dropped"])
    assert reasons == sorted(
        [*["reassurance"] * 3, "diagnosis", "medication", "misattributed_number"]
    )
    assert record["removed"] == 6 and record["stripped"] == {"url": 1}
    everything = " ".join([*result.insights, *result.recommendations, result.summary]).lower()
    for banned in ("normal", "healthy", "fibrillation", "sepsis", "anticoagulant", "http"):
        assert banned not in everything


def test_risk_is_kept_when_the_model_says_more_than_the_facts(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    answer = InsightSet.model_validate({**good_answer, "risk_level": "critical"})
    checked = check_llm_output(answer, synthetic_brief, as_brief(synthetic_brief))
    assert checked.result is not None and checked.result.risk_level == "critical"
    assert checked.record()["risk"]["raised"] is False


class ScriptedModel(LanguageModel):
    """Answers every prompt with the same completion; keeps the prompts it was sent."""

    provider = "scripted"

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("scripted-1")
        self.answer = answer
        self.prompts: list[Prompt] = []

    def complete(self, prompt: Prompt, deadline: float) -> Completion:
        self.prompts.append(prompt)
        return Completion(self.answer, 100, 50)


def test_an_answer_with_nothing_safe_left_falls_back_and_its_removals_still_count(
    synthetic_brief: dict[str, Any],
) -> None:
    # GIVEN a model whose every statement is reassurance, a diagnosis or a drug
    llm = ScriptedModel(
        {
            "insights": ["All readings were normal.", "P01 probably has sepsis."],
            "recommendations": ["No action is needed.", "Start antibiotics."],
            "summary": "The cohort is healthy.",
            "risk_level": "low",
        }
    )
    # WHEN the guarded analyst runs it (one retry with feedback, then the builtin analyst)
    report = GuardedAnalyst(LLMAnalyst(llm), retry_delay_seconds=0.0, sleep=lambda _: None).analyze(
        as_brief(synthetic_brief)
    )
    # THEN the builtin analyst wrote the text, and the model's removals are recorded and counted
    assert report.provider == "builtin" and report.fallback_reason == "ungrounded"
    removed = report.grounding["llm"]["dropped"]
    assert sorted(d["reason"] for d in removed) == [
        "diagnosis",
        "medication",
        "reassurance",
        "reassurance",
        "reassurance",
    ]
    assert report.grounding["removed"] == len(report.grounding["dropped"]) + 5
    # AND the retry told the model which kinds of statements were removed
    retry = llm.prompts[1].user
    assert "reassurance while high-severity findings need review" in retry
    assert "medication" in retry


@pytest.mark.parametrize(
    ("brief", "high"),
    [
        ({"anomalies": {"by_severity": {"high": 0, "medium": 3}}}, False),
        ({"anomalies": {"by_severity": {"high": 1}}}, True),
        ({"anomalies": {"by_severity": {}}, "high_severity": {"participants": 2}}, True),
    ],
)
def test_high_findings_are_read_from_the_counts_or_the_high_severity_list(
    brief: dict[str, Any], high: bool
) -> None:
    assert has_high_findings(as_brief(brief)) is high


@pytest.mark.parametrize(
    ("brief", "reasons"),
    [
        ({"readings": 100, "anomalies": {"by_severity": {"low": 4}}}, []),
        (
            {"readings": 100, "anomalies": {"by_severity": {"medium": 3}}},
            ["medium-severity findings"],
        ),
        ({"readings": 100, "anomalies": {"by_severity": {"high": 1}}}, HIGH),
        ({"readings": 0}, ["no valid readings"]),
    ],
)
def test_what_needs_review_follows_the_computed_risk_level(
    brief: dict[str, Any], reasons: list[str]
) -> None:
    # the builtin rule: only "low" (no high- or medium-severity finding) is nothing to review
    assert review_reasons(as_brief(brief)) == reasons


TRENDS_ANSWER: dict[str, Any] = {
    "insights": [
        "P01's daily median heart rate rose across the uploads and crossed its threshold.",
        "P02's daily median systolic blood pressure rose into the stage 1 range.",
    ],
    "recommendations": [
        "Review the flagged trends of P01 and P02 with their symptoms and activity.",
        "No further action is needed for this cohort.",
    ],
    "summary": "Trends of P01 and P02 crossed a threshold. Risk is low, with no concerns.",
    "risk_level": "low",
}


def test_reassurance_beside_flagged_trends_is_removed_and_says_why() -> None:
    # GIVEN a file whose own findings rate "low" but whose trends across uploads are flagged
    brief = brief_with_trends()
    assert risk_level(brief) == "low" and len(brief.trends) == 2
    assert review_reasons(brief) == ["flagged trends"]
    # WHEN a model answers "risk is low, no concerns" beside them
    answer = InsightSet.model_validate(TRENDS_ANSWER)
    checked = check_llm_output(answer, brief.as_json(), brief)
    # THEN the reassuring statements are removed, the rest kept, and each removal says why
    assert checked.ok and checked.result is not None
    assert checked.result.summary == "Trends of P01 and P02 crossed a threshold."
    assert checked.result.insights == TRENDS_ANSWER["insights"]
    assert checked.result.recommendations == TRENDS_ANSWER["recommendations"][:1]
    dropped = checked.record()["dropped"]
    assert [(d["field"], d["reason"], d["while"]) for d in dropped] == [
        ("recommendations", "reassurance", ["flagged trends"]),
        ("summary", "reassurance", ["flagged trends"]),
    ]
    assert dropped[1]["terms"]["reassurance"] == ["risk is low", "no concerns"]


def test_the_guarded_llm_analyst_removes_it_and_records_why_in_its_provenance() -> None:
    llm = ScriptedModel(TRENDS_ANSWER)
    report = GuardedAnalyst(LLMAnalyst(llm), retry_delay_seconds=0.0, sleep=lambda _: None).analyze(
        brief_with_trends()
    )
    assert report.provider == "scripted" and report.fallback_reason is None
    assert "no concerns" not in report.result.summary.lower()
    assert "risk is low" not in report.result.summary.lower()
    assert report.grounding["removed"] == 2
    assert {d["while"][0] for d in report.grounding["dropped"]} == {"flagged trends"}


def test_reassurance_stays_when_nothing_needs_review() -> None:
    brief = as_brief({"readings": 100, "anomalies": {"by_severity": {"low": 4}}})
    answer = InsightSet.model_validate(
        {
            "insights": ["Findings were few and low severity.", "Risk is low."],
            "recommendations": ["Continue routine monitoring."],
            "summary": "No high- or medium-severity finding. Risk is low.",
            "risk_level": "low",
        }
    )
    checked = check_llm_output(answer, {"readings": 100}, brief)
    assert checked.ok and checked.result is not None and checked.record()["dropped"] == []
