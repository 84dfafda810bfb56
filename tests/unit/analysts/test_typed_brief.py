"""Analysts take the typed `Brief` (issue 16): the builtin analyst reads its attributes, an
LLM analyst sends the model exactly the brief's JSON, as before."""

from __future__ import annotations

from typing import Any

from test_analyst_guarded import ScriptedModel

from healthpipe.analysts.builtin import BuiltinAnalyst, risk_level
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.analysts.meaning import has_high_findings
from healthpipe.analysts.prompt import build_prompt
from healthpipe.domain.documents import Brief
from healthpipe.ports import Completion


def test_the_builtin_analyst_writes_from_a_typed_brief(synthetic_brief: dict[str, Any]) -> None:
    # GIVEN the typed brief of a generated file (high-severity findings in it)
    brief = Brief.model_validate(synthetic_brief)
    # WHEN the builtin analyst analyses it
    report = BuiltinAnalyst().analyze(brief)
    # THEN its text is written from the brief's figures and is grounded in the brief's JSON
    assert report.result.risk_level == risk_level(brief) and has_high_findings(brief)
    readings = f"of {brief.readings:,} valid readings"
    assert any(readings in text for text in report.result.insights)
    level = risk_level(brief)
    assert report.result.summary.startswith(f"Risk from this file's readings is {level} (")
    assert report.grounding["dropped"] == []


def test_an_llm_analyst_sends_the_briefs_json_unchanged(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    # GIVEN a typed brief and a model that records its prompt
    brief = Brief.model_validate(synthetic_brief)
    llm = ScriptedModel([Completion(good_answer, 1000, 100)])
    # WHEN an LLM analyst analyses the brief
    LLMAnalyst(llm).analyze(brief)
    # THEN the model got the prompt of the brief's JSON, byte for byte
    (sent,) = llm.prompts
    expected = build_prompt(synthetic_brief, llm.output_mode)
    assert brief.as_json() == synthetic_brief
    assert (sent.system, sent.user, sent.facts) == (expected.system, expected.user, expected.facts)
