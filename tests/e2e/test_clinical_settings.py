"""The episode gap and the activity threshold are settings (`episode_gap_minutes`,
`activity_steps_above`) that reach the analysis through the analyze stage: `healthpipe run`
with HEALTHPIPE_* set, as the Lambda analyzer reads them from its environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.config import load_settings
from healthpipe.errors import ConfigError
from healthpipe.lambdas import FUNCTIONS
from support.readings import write_csv


def row(when: str, user: str, hr: float, steps: int = 10) -> str:
    return f"2025-06-03T{when}:00Z,{user},{hr},98,{steps},36.8,115,75"


ROWS = [
    # tachycardia (NEWS2 2) at 10:00-10:20, then again 40 minutes later at 11:00-11:20
    *(row(t, "p_runs", 125) for t in ("10:00", "10:10", "10:20", "11:00", "11:10", "11:20")),
    # 122 bpm with 2,500 steps
    row("10:00", "p_walk", 122, steps=2500),
]


def run(tmp_path: Path, name: str) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    source = tmp_path / f"{name}.csv"
    write_csv(source, ROWS)
    workspace = tmp_path / f"ws-{name}"
    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    bucket = workspace / "bucket"
    analysis = json.loads((bucket / "analyzed" / f"{item['dataset_id']}.json").read_text())
    con = duckdb.connect(":memory:")
    try:
        walk = con.execute(
            "SELECT kind, severity, during_activity FROM "
            f"'{bucket / analysis['keys']['anomalies']}' WHERE user_id = 'p_walk'"
        ).fetchall()
    finally:
        con.close()
    return analysis, walk


def episodes(analysis: dict[str, Any]) -> list[tuple[str, int, str]]:
    return sorted(
        (e["kind"], e["readings"], e["start_time"][11:16]) for e in analysis["episodes"]["list"]
    )


def test_the_default_gap_keeps_a_40_minute_pause_in_one_episode_and_walking_is_activity(
    tmp_path: Path,
) -> None:
    # GIVEN no setting: the episode gap is 2 h and activity is above 1,000 steps
    analysis, walk = run(tmp_path, "default")
    # THEN the six readings are one episode, and 122 bpm with 2,500 steps is low, during activity
    assert episodes(analysis) == [("tachycardia_news2_2", 6, "10:00")]
    assert walk == [("tachycardia_news2_2", 1, True)]


def test_a_30_minute_gap_splits_the_run_and_a_higher_threshold_is_no_activity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the settings in the environment, as the Lambda analyzer reads them
    monkeypatch.setenv("HEALTHPIPE_EPISODE_GAP_MINUTES", "30")
    monkeypatch.setenv("HEALTHPIPE_ACTIVITY_STEPS_ABOVE", "3000")
    analysis, walk = run(tmp_path, "short")
    # THEN the 40-minute pause breaks the run in two episodes of three readings
    assert episodes(analysis) == [
        ("tachycardia_news2_2", 3, "10:00"),
        ("tachycardia_news2_2", 3, "11:00"),
    ]
    # AND 2,500 steps is not above 3,000: the finding keeps its chart severity (medium)
    assert walk == [("tachycardia_news2_2", 2, False)]


def test_the_settings_are_validated_and_read_by_the_aws_analyzer() -> None:
    assert load_settings().episode_gap_minutes == 120
    assert load_settings().activity_steps_above == 1000
    for bad in ({"episode_gap_minutes": 0}, {"activity_steps_above": -1}):
        with pytest.raises(ConfigError):
            load_settings(bad)
    assert {"episode_gap_minutes", "activity_steps_above"} <= set(FUNCTIONS["analyzer"].settings)
