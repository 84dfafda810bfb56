"""The failure policy: one retry where it makes sense, then the builtin analyst; never raises."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from conftest import as_brief
from healthpipe.analysts.guarded import GuardedAnalyst
from healthpipe.analysts.llm import LLMAnalyst
from healthpipe.domain.insights import Usage
from healthpipe.ports import AnalystError, Completion, LanguageModel, Prompt


class ScriptedModel(LanguageModel):
    """A fake language model: each call plays the next scripted completion or exception."""

    provider = "scripted"

    def __init__(self, script: list[Completion | Exception]) -> None:
        super().__init__("scripted-1")
        self.script = script
        self.prompts: list[Prompt] = []
        self.deadlines: list[float] = []

    def complete(self, prompt: Prompt, deadline: float) -> Completion:
        self.prompts.append(prompt)
        self.deadlines.append(deadline)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def run(script: list[Completion | Exception], brief: dict[str, Any]) -> Any:
    llm = ScriptedModel(script)
    analyst = LLMAnalyst(llm, prices=(0.001, 0.002))
    report = GuardedAnalyst(analyst, retry_delay_seconds=0.0, sleep=lambda _: None).analyze(
        as_brief(brief)
    )
    return report, llm


def test_success_keeps_the_model_provenance_and_prices_the_tokens(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    report, llm = run([Completion(good_answer, 1000, 100)], synthetic_brief)
    assert (report.provider, report.model, report.fallback_reason) == (
        "scripted",
        "scripted-1",
        None,
    )
    assert report.usage.cost_usd == pytest.approx(1.0 * 0.001 + 0.1 * 0.002)
    assert report.latency_ms >= 0 and report.attempts == 1
    assert len(llm.prompts) == 1


@pytest.mark.parametrize(
    ("error", "calls"),
    [
        (AnalystError("timeout", "read timed out"), 1),
        (AnalystError("access_denied", "no"), 1),
        (AnalystError("no_credentials", "none found"), 1),
        (AnalystError("refused", "content filter"), 1),
        (AnalystError("throttled", "slow down"), 2),
        (AnalystError("server_error", "502"), 2),
    ],
)
def test_which_failures_are_retried(
    error: AnalystError, calls: int, synthetic_brief: dict[str, Any]
) -> None:
    report, llm = run([error, error], synthetic_brief)
    assert len(llm.prompts) == calls
    assert report.provider == "builtin" and report.fallback_reason == error.reason
    assert report.attempts == calls


def test_a_bug_in_an_adapter_never_stops_the_pipeline(synthetic_brief: dict[str, Any]) -> None:
    report, llm = run([KeyError("choices")], synthetic_brief)
    assert report.provider == "builtin" and report.fallback_reason == "unexpected_error"
    assert "KeyError" in str(report.fallback_detail) and len(llm.prompts) == 1


def test_second_answer_is_used_when_the_first_is_invalid(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    report, _ = run(
        [Completion("not json at all", 900, 20), Completion(json.dumps(good_answer), 900, 80)],
        synthetic_brief,
    )
    assert report.provider == "scripted" and report.attempts == 2
    assert (report.usage.input_tokens, report.usage.output_tokens) == (1800, 100)


def test_fallback_records_cost_of_failed_attempts_and_llm_grounding(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    invented = {**good_answer, "summary": "Findings tripled to 123456 this week."}
    report, _ = run(
        [Completion(invented, 1000, 100), Completion(invented, 1000, 100)], synthetic_brief
    )
    assert report.fallback_reason == "ungrounded" and report.attempted == "scripted:scripted-1"
    assert report.usage == Usage(input_tokens=2000, output_tokens=200, cost_usd=0.0024)
    assert report.grounding["llm"]["dropped"][0]["unsupported"] == ["123456"]
    assert report.grounding["llm"]["problem"] == "the summary quotes unsupported numbers"
    # the builtin result that replaced it is the one the report carries
    assert report.result.summary.startswith("Risk from this file's readings is")


def test_a_retry_after_a_rejected_answer_says_why(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    invented = {**good_answer, "summary": "Findings tripled to 123456 this week."}
    report, llm = run(
        [Completion(invented, 1000, 100), Completion(good_answer, 1000, 100)], synthetic_brief
    )
    first, second = llm.prompts
    assert "previous answer" not in first.user
    assert (
        "Your previous answer was rejected: the summary quotes unsupported numbers" in second.user
    )
    assert "numbers not in the facts: 123456" in second.user
    assert second.system == first.system and second.estimated_input_tokens <= 3000
    assert report.provider == "scripted" and report.attempts == 2


def test_a_retry_after_throttling_sends_the_same_prompt(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    _, llm = run(
        [AnalystError("throttled", "slow down"), Completion(good_answer, 10, 10)], synthetic_brief
    )
    first, second = llm.prompts
    assert first == second


def test_a_billed_refusal_is_priced_by_the_analyst_from_the_tokens_the_model_reported(
    synthetic_brief: dict[str, Any],
) -> None:
    # GIVEN a model that refuses after reading the prompt (1000 tokens in, none out)
    report, _ = run(
        [AnalystError("refused", "content filter", tokens=(1000, None))], synthetic_brief
    )
    # THEN the fallback's usage carries those tokens at the analyst's prices, not zero
    assert report.fallback_reason == "refused"
    assert (report.usage.input_tokens, report.usage.output_tokens) == (1000, 0)
    assert report.usage.cost_usd == pytest.approx(1.0 * 0.001)
    assert report.usage.estimated is True


def test_the_model_is_given_one_deadline_for_the_attempt_and_its_retry(
    synthetic_brief: dict[str, Any], good_answer: dict[str, Any]
) -> None:
    # GIVEN a throttled first call, then an answer
    started = time.monotonic()
    report, llm = run(
        [AnalystError("throttled", "slow down"), Completion(good_answer, 10, 10)], synthetic_brief
    )
    # THEN both calls were told the same deadline, the analyst's 30 s from the start
    first, second = llm.deadlines
    assert first == second
    assert started + 29 < first <= time.monotonic() + 30
    assert report.attempts == 2 and report.fallback_reason is None
