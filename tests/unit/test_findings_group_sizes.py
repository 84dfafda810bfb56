"""The findings groups' sizes (`analysis.findings`): the first groups hold the readings of the
densest files the stage's memory was sized for, the groups after them as many as the first
group's findings per reading allow; the facts and the anomaly file stay those of one group."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops.analysis import analyze_parquet, findings
from healthpipe.dataops.engine import EngineLimits
from support.readings import write_processed

START = datetime(2025, 3, 1, tzinfo=UTC)
CALM = (70.0, 98.0, 10.0, 36.8, 115.0, 75.0)  # hr, spo2, steps, temp, sbp, dbp: no finding
# every clinical rule at once: HR 150, SpO2 85, temperature 39.8, BP 200/130
STORMY = (150.0, 85.0, 10.0, 39.8, 200.0, 130.0)


def _file(tmp_path: Path, vitals: tuple[float, ...], users: int = 12, each: int = 20) -> Path:
    rows: list[tuple[Any, ...]] = []
    for step in range(each):  # users interleaved, as a file in time order
        for user in range(users):
            at = START + timedelta(minutes=10 * step, seconds=user)
            rows.append((len(rows) + 1, at, f"u{user:02d}", *vitals))
    path: Path = write_processed(tmp_path / "readings.parquet", rows)
    return path


def test_a_group_grows_as_its_findings_thin_up_to_twice_its_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", 10)
    assert findings._grown(100, 1000, 0) == 200  # no finding: twice, at most
    assert findings._grown(100, 1000, 500) == 200  # 0.5 a reading: 3.5 / 1.5, capped at 2
    assert findings._grown(100, 1000, 1500) == 140  # 1.5 a reading: 3.5 / 2.5
    assert findings._grown(100, 1000, 2500) == 100  # the density the size was made for
    assert findings._grown(100, 1000, 6000) == 50  # denser: smaller, in the same memory
    assert findings._grown(100, 1000, 100_000) == 10  # never below MIN_READINGS_PER_GROUP
    assert findings._grown(100, 0, 0) == 200  # a first group of no reading


def _sized(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record the groups the findings cut after the first ones: (readings, groups)."""
    seen: list[tuple[int, int]] = []
    real = findings._balanced_runs

    def recording(users: list[tuple[str | None, int]], count: int) -> list[Any]:
        seen.append((sum(n for _, n in users), count))
        return real(users, count)

    monkeypatch.setattr(findings, "_balanced_runs", recording)
    return seen


def test_the_later_groups_are_a_multiple_of_the_threads_of_even_readings() -> None:
    assert findings._group_count(160, 80, 40, 2) == 2
    assert findings._group_count(161, 80, 40, 2) == 4  # three would leave one thread idle
    assert findings._group_count(1450, 508, 254, 2) == 4  # 2M realistic: 2 + 4 groups
    assert findings._group_count(1400, 254, 254, 2) == 6  # the first groups' size: as cut
    # eight threads, 300 readings left: two groups of the first ones' size, not eight of 37
    assert findings._group_count(300, 512, 256, 8) == 2
    users: list[tuple[str | None, int]] = [("a", 5), ("b", 5), ("c", 12), ("d", 1), (None, 3)]
    assert findings._balanced_runs(users, 2) == [["a", "b"], ["c", "d", None]]
    assert findings._balanced_runs(users, 1) == [["a", "b", "c", "d", None]]
    # never a user split, no empty run: five users in at most eight runs
    assert findings._balanced_runs(users, 8) == [["a"], ["b"], ["c"], ["d"], [None]]


def _analysed(
    tmp_path: Path, parquet: Path, name: str, memory_mb: int = 128
) -> tuple[dict[str, Any], list[Any]]:
    out = tmp_path / f"{name}.parquet"
    limits = EngineLimits(memory_limit_mb=memory_mb, threads=2, temp_dir=tmp_path / f"t-{name}")
    facts = analyze_parquet(parquet, out, limits=limits, severity=True)
    rows = duckdb.execute(f"SELECT * FROM read_parquet('{out}')").fetchall()
    return json.loads(json.dumps(facts, default=str)), rows


@pytest.mark.parametrize("vitals", [CALM, STORMY])
def test_the_groups_after_the_first_are_sized_by_its_findings_and_change_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vitals: tuple[float, ...]
) -> None:
    parquet = _file(tmp_path, vitals)  # 12 participants of 20 readings, interleaved
    whole = _analysed(tmp_path, parquet, "whole")  # one group
    # WHEN a findings group holds 40 readings (two participants) at the stage's memory
    monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", 10)
    monkeypatch.setattr(findings, "READINGS_PER_MB", 1)
    later = _sized(monkeypatch)
    grouped = _analysed(tmp_path, parquet, "grouped", memory_mb=40)
    # THEN the two first groups (one per thread) took 80 readings, and the other 160 were
    # cut by the first one's findings: in two groups (twice 40 readings each) without a
    # finding, in more than four (fewer than 40 each) when each reading has several
    if vitals == CALM:
        assert later == [(160, 2)]
    else:
        assert whole[0]["anomalies"]["total"] > 2.5 * 240
        assert later[0][0] == 160 and later[0][1] > 4
    # AND the facts and the anomaly rows, in order, are the single group's
    assert grouped == whole
