"""Issue 17, Deliver 1: the analysis in groups of participants (`analysis.buckets`) gives
exactly the single path's facts (`analyze_parquet` with its severity facts) and anomaly file
(rows and order), whatever the groups: one participant a group, several, one group."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.bootstrap import stage_settings
from healthpipe.config import load_settings
from healthpipe.dataops.analysis import analyze_parquet, findings
from healthpipe.dataops.analysis.buckets import (
    GroupResult,
    analyze_split,
    merge_severity,
    participant_groups,
    split_participants,
)
from healthpipe.dataops.analysis.day_counts import day_counts
from healthpipe.dataops.engine import EngineLimits
from support.readings import HEADER, write_processed

USERS = ["p01", "p02", "calm", "o'neil", "p05", "zoé", "p07"]
START = datetime(2025, 3, 1, tzinfo=UTC)


def _value(rng: random.Random, lo: float, hi: float, calm: bool, normal: float) -> Any:
    if rng.random() < 0.03:
        return None
    return normal if calm else round(rng.uniform(lo, hi), 1)


def _rows() -> list[tuple[Any, ...]]:
    """Readings of several participants over three days (one, `calm`, always normal, so its
    group has no finding), in file order (users interleaved), some vitals missing."""
    rng = random.Random(17)
    rows: list[tuple[Any, ...]] = []
    for step in range(90):
        for user in USERS:
            if rng.random() < 0.2:
                continue
            calm = user == "calm"
            at = START + timedelta(minutes=47 * step + rng.randint(0, 5))
            rows.append(
                (
                    len(rows) + 2,
                    at,
                    user,
                    _value(rng, 35, 150, calm, 70.0),
                    _value(rng, 85, 100, calm, 98.0),
                    _value(rng, 0, 3000, calm, 10.0),
                    _value(rng, 34.5, 39.8, calm, 36.8),
                    _value(rng, 85, 200, calm, 115.0),
                    _value(rng, 50, 125, calm, 75.0),
                )
            )
    return rows


def _rejected(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    """Conflicting readings of two participants (they fall in different groups), and a
    duplicate (not scored)."""
    lines = [f"source_row,reject_reason,{HEADER},raw_line"]
    for n, (source_row, at, user, *_) in enumerate(rows[5:60:11]):
        reason = "duplicate_reading" if n == 2 else "conflicting_reading"
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{100_000 + source_row},{reason},{stamp},{user},155,86,5,39.6,185,118,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _anomalies(path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(":memory:")
    try:
        return con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The processed file, its rejected file, history baselines and the single path's
    facts and anomalies."""
    tmp = tmp_path_factory.mktemp("groups")
    rows = _rows()
    parquet = write_processed(tmp / "processed.parquet", rows)
    rejected = _rejected(tmp / "rejected.csv", rows)
    # one participant's history: baselines from earlier files replace the file's
    history = [("p05", "heart_rate", 72.0, 4.0, 5.0), ("p05", "spo2", 97.0, 1.0, 1.2)]
    limits = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp / "t")
    out = tmp / "single.parquet"
    facts = analyze_parquet(
        parquet,
        out,
        limits=limits,
        rejected_csv=rejected,
        history_baselines=history,
        severity=True,
    )
    return {
        "tmp": tmp,
        "parquet": parquet,
        "rejected": rejected,
        "history": history,
        "limits": limits,
        "facts": facts,
        "anomalies": _anomalies(out),
        "rows": len(rows),
    }


@pytest.mark.parametrize("group_rows", [1, 10**9])
def test_groups_give_the_single_paths_facts_and_anomaly_file(
    data: dict[str, Any], group_rows: int
) -> None:
    # GIVEN a file analysed on the single path
    facts = data["facts"]
    assert facts["anomalies"]["conflicting"] > 0 and facts["episodes"]["total"] > 0
    assert facts["high_participants"]["total"] > 0
    # WHEN it is analysed in groups of at most `group_rows` readings (1: each participant
    # alone; 10**9: one group)
    out = data["tmp"] / f"groups-{group_rows}.parquet"
    split = split_participants(
        data["parquet"],
        data["tmp"] / f"split-{group_rows}",
        limits=data["limits"],
        group_rows=group_rows,
        rejected_csv=data["rejected"],
    )
    assert len(split.readings) == (7 if group_rows == 1 else 1)
    grouped = analyze_split(
        split, out, limits=data["limits"], in_process=True, history_baselines=data["history"]
    )
    # THEN the facts are the same, in the same order, and so is every anomaly row
    assert grouped == facts
    assert json.dumps(grouped, default=str) == json.dumps(facts, default=str)
    assert _anomalies(out) == data["anomalies"]


def test_a_group_s_conflicting_readings_are_found_when_its_findings_run_in_parts(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A group of participants with more readings than one findings group (the stage's
    # memory in readings) runs its findings in parts, each on a cursor of its own: the
    # conflicting readings were a temporary table the cursors could not see, and a 10M-row
    # file with conflicting readings failed to analyse ("Table with name conflicting does
    # not exist"). Here a findings group is one participant.
    monkeypatch.setattr(findings, "READINGS_PER_MB", 0)
    monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", 1)
    split = split_participants(
        data["parquet"],
        data["tmp"] / "split-parts",
        limits=data["limits"],
        group_rows=10**9,
        rejected_csv=data["rejected"],
    )
    out = data["tmp"] / "groups-parts.parquet"
    grouped = analyze_split(
        split, out, limits=data["limits"], in_process=True, history_baselines=data["history"]
    )
    assert grouped["anomalies"]["conflicting"] > 0
    assert grouped == data["facts"]
    assert _anomalies(out) == data["anomalies"]


def test_participants_are_grouped_in_order_and_never_split() -> None:
    users: list[tuple[str | None, int]] = [("a", 5), ("b", 5), ("c", 12), ("d", 1), (None, 3)]
    assert participant_groups(users, 10) == [0, 0, 1, 2, 2]
    assert participant_groups(users, 1) == [0, 1, 2, 3, 4]
    assert participant_groups(users, 100) == [0, 0, 0, 0, 0]
    assert participant_groups([], 10) == []


def test_the_groups_day_histograms_in_order_are_the_files(data: dict[str, Any]) -> None:
    # GIVEN the file split in groups of one participant or two
    split = split_participants(
        data["parquet"], data["tmp"] / "split", limits=data["limits"], group_rows=150
    )
    assert len(split.readings) > 1
    # THEN the day histograms of each group, one group after the other, are the file's
    limits = data["limits"]
    grouped = [c for readings in split.readings for c in day_counts(readings, limits)]
    assert grouped == day_counts(data["parquet"], limits)


def test_the_groups_are_a_local_setting() -> None:
    # GIVEN groups of 500,000 rows on 3 workers
    values = {"analyze_group_rows": 500_000, "workers": 3}
    # THEN the local analyze stage takes them; on AWS the analyzer stays one process
    local = stage_settings(load_settings(values))["analyze_settings"]
    assert (local.group_rows, local.workers) == (500_000, 3)
    aws = stage_settings(load_settings({**values, "runtime": "aws"}))["analyze_settings"]
    assert aws.group_rows == 0
    assert load_settings({}).analyze_group_rows == 2_000_000


def _severity(by_severity: dict[str, int], user: str) -> dict[str, Any]:
    return {
        "red_scores": {"readings": 1, "by_metric": {"spo2": 1}},
        "high_participants": {"total": 1, "list": [{"user_id": user, "high": 1, "findings": []}]},
        "headline": {"by_kind": {}, "by_severity": by_severity, "baseline_on_clinical": 0},
        "readings_flagged": {},
        "headline_by_user": {},
    }


def test_merged_severity_counts_keep_the_single_paths_key_order() -> None:
    # GIVEN a first group with high findings only, and a second with every severity
    first = GroupResult(0, 2, _severity({"high": 2}, "a"), {"a": None})
    second = GroupResult(1, 3, _severity({"low": 1, "medium": 1, "high": 1}, "b"), {"b": None})
    # WHEN their severity facts are merged
    merged = merge_severity([first, second])
    # THEN the counts add, low to high as severe.severity_facts orders them
    assert list(merged["headline"]["by_severity"].items()) == [
        ("low", 1),
        ("medium", 1),
        ("high", 3),
    ]
    assert merged["red_scores"] == {"readings": 2, "by_metric": {"spo2": 2}}
    assert [u["user_id"] for u in merged["high_participants"]["list"]] == ["a", "b"]
