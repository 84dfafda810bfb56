"""Episodes: ≥ 3 consecutive abnormal readings of one user for one vital in one direction,
broken by a gap of more than 2 h, in Python (`find_runs`, `find_episodes`) and in the SQL
episodes of `dataops.analysis.analyze_parquet`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthpipe.dataops.analysis import analyze_parquet
from healthpipe.dataops.engine import EngineLimits
from healthpipe.domain import clinical as cl
from healthpipe.domain.episodes import MIN_EPISODE_READINGS
from support.readings import write_readings
from support.twins import Episode, find_episodes, find_runs

T, F = True, False
T0 = datetime(2025, 9, 17, 12, 0, tzinfo=UTC)
NORMAL = {"heart_rate": 70.0, "spo2": 98.0, "steps": 100.0, "temp_c": 36.8,
          "systolic_bp": 115.0, "diastolic_bp": 75.0}  # fmt: skip


def test_minimum_is_three() -> None:
    assert MIN_EPISODE_READINGS == 3


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], []),
        ([F, F, F], []),
        ([T, T], []),
        ([T, T, T], [(0, 2)]),
        ([T, T, F, T, T], []),  # a normal reading breaks the run
        ([T, T, F, T, T, T], [(3, 5)]),
        ([F, T, T, T, T, T, F], [(1, 5)]),
        ([T, T, T, F, T, T, T, T], [(0, 2), (4, 7)]),
        ([T, F, T, F, T, F, T], []),
    ],
)
def test_find_episodes(flags: list[bool], expected: list[tuple[int, int]]) -> None:
    episodes = find_episodes(flags)
    assert [(e.start_index, e.end_index) for e in episodes] == expected
    assert [e.readings for e in episodes] == [end - start + 1 for start, end in expected]


def test_minimum_can_be_changed() -> None:
    assert find_episodes([T, T, F, T], minimum=2) == [Episode(0, 1)]
    assert find_episodes([T, T, T], minimum=4) == []


# --- the SQL path -----------------------------------------------------------------------------

# Per user: heart-rate series in time order (abnormal: NEWS2 heart-rate score > 0).
HR: dict[str, list[float]] = {
    "ann": [130, 135, 140, 70, 130, 130],  # one episode of 3, then a run of 2
    "ben": [40, 45, 48, 50, 130],  # low x4 then high: an episode of 4 (direction changes)
    "cat": [130, 130, 70, 130, 130],  # broken by a normal reading: none
    "dan": [70, 70, 70, 70],  # never abnormal
}


def interleaved(series: dict[str, list[float]], metric: str) -> list[dict[str, Any]]:
    """Users' readings interleaved in time and in file order."""
    rows: list[dict[str, Any]] = []
    for i in range(max(len(v) for v in series.values())):
        for user, values in sorted(series.items()):
            if i < len(values):
                rows.append({**NORMAL, metric: float(values[i]), "user_id": user,
                             "event_time": T0 + timedelta(minutes=i),
                             "source_row": len(rows) + 1})  # fmt: skip
    return rows


def sql_episodes(tmp_path: Path, readings: list[dict[str, Any]]) -> dict[str, Any]:
    parquet = write_readings(tmp_path / "readings.parquet", readings)
    facts = analyze_parquet(
        parquet,
        tmp_path / "anomalies.parquet",
        limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "d"),
    )
    episodes: dict[str, Any] = facts["episodes"]
    return episodes


def direction(metric: str, value: float) -> str | None:
    kind = cl.NEWS2_BY_METRIC[metric].band_for(value).kind
    return None if kind is None else cl.KINDS[kind].direction


def python_episodes(series: dict[str, list[float]], metric: str) -> set[tuple[str, str, int]]:
    found = set()
    for user, values in series.items():
        runs = [(direction(metric, v), 60.0 * i) for i, v in enumerate(values)]
        for episode in find_runs(runs):
            found.add((user, metric, episode.readings))
    return found


def test_sql_episodes_match_python_with_interleaved_users(tmp_path: Path) -> None:
    episodes = sql_episodes(tmp_path, interleaved(HR, "heart_rate"))
    got = {(e["user_id"], e["metric"], int(e["readings"])) for e in episodes["list"]}
    assert got == python_episodes(HR, "heart_rate")
    assert got == {("ann", "heart_rate", 3), ("ben", "heart_rate", 4)}
    assert episodes["total"] == 2


def test_sql_episode_times_and_severity(tmp_path: Path) -> None:
    episodes = sql_episodes(tmp_path, interleaved({"ann": HR["ann"]}, "heart_rate"))
    (only,) = episodes["list"]
    assert only["kind"] == "tachycardia_news2_3"  # the worst reading's kind
    assert only["severity"] == "high"  # 140 scores 3
    assert (only["peak_value"], only["worst"]) == (140.0, "highest")
    assert only["start_time"].startswith("2025-09-17T12:00:00")
    assert only["end_time"].startswith("2025-09-17T12:02:00")
    assert only["duration_s"] == 120


def test_sql_episodes_follow_time_not_file_order(tmp_path: Path) -> None:
    readings = interleaved({"eve": [130, 130, 130, 70]}, "heart_rate")
    # the file lists eve's readings out of time order: normal one first
    readings.reverse()
    for number, reading in enumerate(readings, start=1):
        reading["source_row"] = number
    episodes = sql_episodes(tmp_path, readings)
    assert [(e["user_id"], int(e["readings"])) for e in episodes["list"]] == [("eve", 3)]


def test_sql_episodes_do_not_mix_metrics(tmp_path: Path) -> None:
    readings = []
    for i, change in enumerate([{"heart_rate": 130.0}, {"spo2": 90.0}, {"temp_c": 39.5}]):
        readings.append({**NORMAL, **change, "user_id": "fay",
                         "event_time": T0 + timedelta(minutes=i), "source_row": i + 1})  # fmt: skip
    episodes = sql_episodes(tmp_path, readings)
    assert episodes["total"] == 0 and episodes["list"] == []


@pytest.mark.parametrize(
    ("metric", "abnormal", "normal"),
    [("spo2", 91.0, 97.0), ("temp_c", 39.5, 37.0), ("systolic_bp", 95.0, 120.0)],
)
def test_sql_episodes_for_other_news2_metrics(
    tmp_path: Path, metric: str, abnormal: float, normal: float
) -> None:
    series = {
        "gus": [abnormal, abnormal, abnormal],
        "hal": [abnormal, abnormal, normal, abnormal, abnormal],
    }
    episodes = sql_episodes(tmp_path, interleaved(series, metric))
    got = {(e["user_id"], e["metric"], int(e["readings"])) for e in episodes["list"]}
    assert got == python_episodes(series, metric) == {("gus", metric, 3)}


def test_sql_blood_pressure_episodes(tmp_path: Path) -> None:
    readings = []
    pressures = [(150.0, 95.0), (185.0, 100.0), (135.0, 85.0), (115.0, 75.0)]
    for i, (sbp, dbp) in enumerate(pressures):
        readings.append({**NORMAL, "systolic_bp": sbp, "diastolic_bp": dbp, "user_id": "ida",
                         "event_time": T0 + timedelta(minutes=i), "source_row": i + 1})  # fmt: skip
    episodes = sql_episodes(tmp_path, readings)
    bp = [e for e in episodes["list"] if e["metric"] == "blood_pressure"]
    assert [(e["user_id"], int(e["readings"]), e["severity"]) for e in bp] == [("ida", 3, "high")]


# --- issue 13: direction, time gap, crisis inside a BP run -------------------------------------

H = 3600.0


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ([("low", 0), ("high", 60), ("low", 120)], []),
        ([("low", 0), ("low", 60), ("low", 120), ("high", 180)], [(0, 2)]),
        ([("high", 0), ("high", 2 * H), ("high", 4 * H)], [(0, 2)]),  # 2 h apart: one run
        ([("high", 0), ("high", 2 * H + 1), ("high", 4 * H)], []),  # more than 2 h: broken
        ([("high", 0), ("high", 96 * H), ("high", 216 * H)], []),  # Jan 3, 7, 12
        ([("low", 0), ("low", None), ("low", 120)], []),  # a missing time breaks
        ([("low", 0), ("low", 60), (None, 120), ("low", 180)], []),
        ([("high", 0), ("high", 60), ("high", 120), ("high", 9 * H), ("high", 9 * H + 60),
          ("high", 9 * H + 120)], [(0, 2), (3, 5)]),
    ],
)  # fmt: skip
def test_find_runs(
    runs: list[tuple[str | None, float | None]], expected: list[tuple[int, int]]
) -> None:
    assert [(e.start_index, e.end_index) for e in find_runs(runs)] == expected


def timed(
    values: list[dict[str, float]], minutes: Sequence[float], user: str = "zed"
) -> list[dict[str, Any]]:
    return [
        {**NORMAL, **v, "user_id": user, "event_time": T0 + timedelta(minutes=m),
         "source_row": i + 1}
        for i, (v, m) in enumerate(zip(values, minutes, strict=True))
    ]  # fmt: skip


def test_heart_rate_45_95_45_is_no_episode(tmp_path: Path) -> None:
    readings = timed([{"heart_rate": v} for v in (45.0, 95.0, 45.0)], [0, 10, 20])
    assert sql_episodes(tmp_path, readings)["total"] == 0


def test_a_crisis_inside_a_bp_run_is_a_crisis_episode(tmp_path: Path) -> None:
    pairs = [(132.0, 70.0), (134.0, 70.0), (190.0, 100.0)]
    readings = timed([{"systolic_bp": s, "diastolic_bp": d} for s, d in pairs], [0, 10, 20])
    episodes = sql_episodes(tmp_path, readings)
    (only,) = episodes["list"]
    assert (only["kind"], only["severity"], only["readings"]) == ("hypertensive_crisis", "high", 3)
    assert (only["worst_systolic_bp"], only["worst_diastolic_bp"]) == (190.0, 100.0)
    assert episodes["by_kind"] == {"hypertensive_crisis": 1}


def test_readings_days_apart_are_no_episode(tmp_path: Path) -> None:
    days = [2 * 24 * 60, 6 * 24 * 60, 11 * 24 * 60]  # Jan 3, 7 and 12 at noon
    readings = timed([{"heart_rate": 130.0}] * 3, days)
    assert sql_episodes(tmp_path, readings)["total"] == 0
    # the same readings 30 minutes apart are one episode
    readings = timed([{"heart_rate": 130.0}] * 3, [0, 30, 60])
    (only,) = sql_episodes(tmp_path, readings)["list"]
    assert only["readings"] == 3 and only["duration_s"] == 3600


def test_heart_rate_during_activity_makes_no_episode(tmp_path: Path) -> None:
    # 122 bpm while walking (2,500 steps) three times: marked, low, no episode
    readings = timed([{"heart_rate": 122.0, "steps": 2500.0}] * 3, [0, 10, 20])
    assert sql_episodes(tmp_path, readings)["total"] == 0
    # 135 bpm (NEWS2 3) is an episode whatever the activity
    readings = timed([{"heart_rate": 135.0, "steps": 2500.0}] * 3, [0, 10, 20])
    assert sql_episodes(tmp_path, readings)["total"] == 1
