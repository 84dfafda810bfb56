"""The prompt: de-identified aggregates only, instructions apart from data, bounded size."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import brief_of, user_ids_in
from healthpipe.analysts.prompt import MAX_INPUT_TOKENS, build_prompt, estimate_tokens
from healthpipe.synthetic import SyntheticSpec, generate_csv

MODES = ("tool", "json")


def prompt_text(brief: dict[str, Any], mode: str) -> str:
    prompt = build_prompt(brief, mode)  # type: ignore[arg-type]
    return prompt.system + "\n" + prompt.user


def test_seed_prompts_contain_no_user_id_and_no_timestamp(
    seed_dir: Path, seed_briefs: dict[str, dict[str, Any]]
) -> None:
    for name, brief in seed_briefs.items():
        ids = user_ids_in(seed_dir / name)
        assert {f"user_{i}" for i in range(1, 11)} <= ids  # the seed's own ids
        for mode in MODES:
            text = prompt_text(brief, mode)
            assert not any(re.search(rf"\b{re.escape(uid)}\b", text) for uid in ids)
            assert "user_" not in text and "user_id" not in text
            assert not re.search(r"\d{4}-\d{2}-\d{2}T?\d{0,2}", text)  # no dates or times
        labels = [p["participant"] for p in brief["participants_at_risk"]]
        assert labels == [f"P{i:02d}" for i in range(1, len(labels) + 1)]


def test_system_prompt_holds_no_data_and_user_message_holds_the_facts(
    synthetic_brief: dict[str, Any],
) -> None:
    for mode in MODES:
        prompt = build_prompt(synthetic_brief, mode)  # type: ignore[arg-type]
        assert str(synthetic_brief["readings"]) not in prompt.system
        facts = json.loads(prompt.user.split("<facts>\n", 1)[1].split("\n</facts>", 1)[0])
        assert facts == prompt.facts
        assert facts["anomalies"]["total"] == synthetic_brief["anomalies"]["total"]
    assert "JSON schema" in build_prompt(synthetic_brief, "json").system
    assert "record_health_insights" in build_prompt(synthetic_brief, "tool").system


# 2,000 users in 20,000 rows grow the brief past the bound as 200,000 rows did (the same
# participants at risk, trimmed alike) at a tenth of the rows: what grows it is the users.
@pytest.mark.parametrize(("rows", "users", "over"), [(1_000, 10, False), (20_000, 2_000, True)])
def test_prompt_stays_within_the_token_bound(
    rows: int,
    users: int,
    over: bool,
    tmp_path: Path,
    analyzed: Callable[[Path], dict[str, Any]],
) -> None:
    # GIVEN a generated file with many users (what grows a brief: the top lists are bounded,
    # the participants are not), through the real stages
    source = tmp_path / f"vitals-{rows}.csv"
    generate_csv(SyntheticSpec(rows=rows, users=users, seed=11), source)
    analysis = analyzed(source)
    assert analysis["readings"] > rows * 0.9
    ids = {str(u["user_id"]) for u in analysis["users"]["top"]}
    for mode in MODES:
        # WHEN the prompt is built
        prompt = build_prompt(brief_of(analysis), mode)  # type: ignore[arg-type]
        text = prompt.system + prompt.user
        # THEN it is within the bound and names no user
        assert prompt.estimated_input_tokens <= MAX_INPUT_TOKENS
        assert estimate_tokens(prompt.user) < prompt.estimated_input_tokens
        assert not any(uid in text for uid in ids)
        if over:  # the many-user brief is over the bound: trimming is what kept it within
            assert prompt.trimmed > 0


def test_an_oversized_brief_is_trimmed_to_the_bound(synthetic_brief: dict[str, Any]) -> None:
    # GIVEN a brief inflated far beyond the budget (hundreds of participants and episodes)
    big = copy.deepcopy(synthetic_brief)
    person = big["participants_at_risk"][0]
    episode = {
        "participant": "P01",
        "metric": "spo2",
        "kind": "low_spo2",
        "severity": "high",
        "readings": 9,
        "duration_minutes": 8.0,
        "peak_value": 88.0,
    }
    big["participants_at_risk"] = [{**person, "participant": f"P{i:03d}"} for i in range(400)]
    big["episodes"]["top"] = [episode] * 400
    big["data_quality"]["reject_reasons"] = {f"reason_{i}": i for i in range(40)}
    prompt = build_prompt(big, "tool")
    # THEN the riskiest participants are kept first and the prompt fits
    assert prompt.estimated_input_tokens <= MAX_INPUT_TOKENS
    assert prompt.trimmed > 0
    kept = [p["participant"] for p in prompt.facts.get("participants_at_risk", [])]
    assert kept and kept == [p["participant"] for p in big["participants_at_risk"][: len(kept)]]
    assert prompt.facts["readings"] == big["readings"]


def test_a_tighter_budget_trims_more(synthetic_brief: dict[str, Any]) -> None:
    roomy = build_prompt(synthetic_brief, "json")
    tight = build_prompt(
        synthetic_brief, "json", max_input_tokens=roomy.estimated_input_tokens - 200
    )
    assert tight.trimmed > roomy.trimmed
    assert tight.estimated_input_tokens <= roomy.estimated_input_tokens - 200
    with pytest.raises(ValueError, match="does not fit"):
        build_prompt(synthetic_brief, "json", max_input_tokens=300)


def test_the_prompt_names_steps_as_activity_not_as_a_vital_sign() -> None:
    # issue 13: the prompt listed steps among the vital signs
    system = build_prompt(
        {"readings": 1, "participants": 1}, "json", max_input_tokens=100_000
    ).system
    vitals = re.search(r"vital signs \(([^)]*)\)", system)
    assert vitals is not None and "step" not in vitals.group(1)
    assert "activity (step counts)" in system and "not a vital sign" in system


def test_high_severity_sentences_reach_the_model_without_their_timestamps(
    synthetic_brief: dict[str, Any],
) -> None:
    # GIVEN a brief whose high-severity sentences name the time of the reading (for the report)
    brief = copy.deepcopy(synthetic_brief)
    brief["high_severity"] = {
        "participants": 1,
        "list": [
            {
                "participant": "P01",
                "high_findings": 1,
                "readings": ["SpO2 85 % at 2026-01-03 10:00 UTC — Low SpO2 (NEWS2 3)"],
                "sentence": "P01 (1 high-severity finding): SpO2 85 % at 2026-01-03 10:00 UTC",
            }
        ],
    }
    # WHEN the prompt is built
    prompt = build_prompt(brief, "json")
    # THEN the finding is there, its time is not
    assert prompt.facts["high_severity"]["list"][0]["readings"] == [
        "SpO2 85 % — Low SpO2 (NEWS2 3)"
    ]
    assert "sentence" not in prompt.facts["high_severity"]["list"][0]
    assert not re.search(r"\d{4}-\d{2}-\d{2}", prompt.user)
