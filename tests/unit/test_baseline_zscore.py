"""The per-user robust baseline: modified z-score 0.6745·(x − median)/MAD (MeanAD form when
MAD is 0), the spread floored at the measuring resolution, flagged when |M| > 3.5, only for
users with ≥ 8 readings; baseline-only findings at most low unless the value is outside the
chart's normal band — in Python and in the SQL path (`dataops.analysis.analyze_parquet` on a
crafted Parquet file)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops.analysis import analyze_parquet
from healthpipe.dataops.engine import EngineLimits
from healthpipe.domain import baseline as bl
from support import twins as tw
from support.readings import write_readings

T0 = datetime(2025, 9, 17, 12, 0, tzinfo=UTC)
NORMAL = {"heart_rate": 70.0, "spo2": 98.0, "steps": 100.0, "temp_c": 36.8,
          "systolic_bp": 115.0, "diastolic_bp": 75.0}  # fmt: skip


def test_constants_are_the_published_ones() -> None:
    assert bl.CONSISTENCY == 0.6745
    assert bl.THRESHOLD == 3.5
    assert bl.MIN_READINGS == 8


def test_modified_z_formula() -> None:
    values = [60.0, 62, 64, 66, 68, 70, 72, 74, 200]
    median = statistics.median(values)  # 68
    mad = tw.median_absolute_deviation(values)  # median(|x-68|) = 4
    assert (median, mad) == (68, 4)
    scores = tw.modified_z_scores(values)
    assert scores[-1] == pytest.approx(0.6745 * (200 - 68) / 4)
    assert scores[0] == pytest.approx(0.6745 * (60 - 68) / 4)
    assert [tw.is_outlier(s) for s in scores] == [False] * 8 + [True]


def test_threshold_is_strict() -> None:
    assert not tw.is_outlier(3.5)
    assert not tw.is_outlier(-3.5)
    assert tw.is_outlier(3.5000001)
    assert tw.is_outlier(-3.6)
    assert not tw.is_outlier(None)


def test_fewer_than_eight_readings_have_no_baseline() -> None:
    assert tw.modified_z_scores([60.0, 61, 62, 63, 64, 65, 500]) == [None] * 7
    assert all(s is not None for s in tw.modified_z_scores([60.0, 61, 62, 63, 64, 65, 66, 500]))


def test_mad_zero_uses_the_mean_absolute_deviation() -> None:
    values = [70.0] * 5 + [71, 72, 300]
    assert tw.median_absolute_deviation(values) == 0
    meanad = tw.mean_absolute_deviation(values)
    assert meanad == pytest.approx((1 + 2 + 230) / 8)
    scores = tw.modified_z_scores(values, "heart_rate")
    assert scores[-1] == pytest.approx(230 / (1.253314 * meanad))
    assert [tw.is_outlier(s) for s in scores] == [False] * 7 + [True]
    assert bl.MEANAD_CONSISTENCY == 1.253314


def test_a_constant_series_flags_nothing() -> None:
    assert tw.modified_z_scores([70.0] * 9, "heart_rate") == [0.0] * 9
    assert bl.modified_z(300, 70, 0) is None  # no spread at all and no resolution


def test_the_spread_is_at_least_one_measuring_step() -> None:
    # a flat heart rate with one reading 3 bpm higher: MeanAD 1/3 bpm would make it an
    # outlier (M ≈ 7.2); with the spread floored at 1 bpm it is M ≈ 2.4, not an outlier
    flat = [70.0] * 8 + [73]
    assert tw.is_outlier(tw.modified_z_scores(flat)[-1])
    assert not tw.is_outlier(tw.modified_z_scores(flat, "heart_rate")[-1])
    # five steps is an outlier
    assert tw.is_outlier(tw.modified_z_scores([70.0] * 8 + [75], "heart_rate")[-1])
    # with a MAD below the resolution the MAD form is floored too
    assert bl.modified_z(37.0, 36.8, 0.05, 0.05, 0.1) == pytest.approx(0.6745 * 0.2 / 0.1)


def test_strong_deviation_is_medium_otherwise_low() -> None:
    assert tw.baseline_severity(4.0).label == "low"
    assert tw.baseline_severity(-4.0).label == "low"
    assert tw.baseline_severity(5.01).label == "medium"
    assert tw.baseline_severity(-6.0).label == "medium"


def test_a_strong_deviation_inside_the_normal_band_is_low() -> None:
    # issue 13: 37.6 °C is clinically normal (NEWS2 0): low however strong the deviation
    assert tw.baseline_severity(5.4, "temp_c", 37.6).label == "low"
    assert tw.baseline_severity(5.4, "temp_c", 38.1).label == "medium"
    assert tw.baseline_severity(9.0, "heart_rate", 88).label == "low"
    assert tw.baseline_severity(9.0, "heart_rate", 91).label == "medium"
    assert tw.baseline_severity(9.0, "diastolic_bp", 79).label == "low"
    assert tw.baseline_severity(9.0, "diastolic_bp", 80).label == "medium"
    assert tw.baseline_severity(9.0, "systolic_bp", 125).label == "low"
    assert tw.baseline_severity(9.0, "systolic_bp", 130).label == "medium"


# --- the SQL path -----------------------------------------------------------------------------


def readings_for(series: dict[str, list[float]], metric: str) -> list[dict[str, Any]]:
    """One reading per value, users interleaved in time, other vitals constant."""
    rows: list[dict[str, Any]] = []
    longest = max(len(v) for v in series.values())
    for i in range(longest):
        for user, values in sorted(series.items()):
            if i < len(values):
                rows.append(
                    {**NORMAL, metric: values[i], "user_id": user,
                     "event_time": T0 + timedelta(minutes=i), "source_row": len(rows) + 1}
                )  # fmt: skip
    return rows


Rows = list[dict[str, Any]]


def analyze(tmp_path: Path, readings: Rows) -> tuple[dict[str, Any], Rows]:
    parquet = write_readings(tmp_path / "readings.parquet", readings)
    out = tmp_path / "anomalies.parquet"
    facts = analyze_parquet(
        parquet, out, limits=EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "d")
    )
    con = duckdb.connect(":memory:")
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{out}')")
        names = [d[0] for d in cur.description or []]
        anomalies = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    return facts, anomalies


def python_baseline(readings: list[dict[str, Any]], metric: str) -> dict[int, int]:
    """source_row -> severity of every baseline anomaly the Python functions find."""
    by_user: dict[str, list[dict[str, Any]]] = {}
    for r in readings:
        by_user.setdefault(r["user_id"], []).append(r)
    flagged: dict[int, int] = {}
    for rows in by_user.values():
        scores = tw.modified_z_scores([r[metric] for r in rows], metric)
        for r, score in zip(rows, scores, strict=True):
            if score is not None and tw.is_outlier(score):
                flagged[r["source_row"]] = int(tw.baseline_severity(score, metric, r[metric]))
    return flagged


SERIES = {
    # 9 readings, one far outlier (M ≈ 22) and one moderate (M ≈ 4.4 → low)
    "alice": [60.0, 62, 64, 66, 68, 70, 72, 200, 94],
    # exactly 8 readings: has a baseline
    "bob": [80.0, 81, 79, 80, 82, 78, 80, 40],
    # 7 readings: no baseline however extreme
    "carol": [70.0, 71, 72, 73, 74, 75, 250],
    # MAD 0: the MeanAD form flags 300
    "dave": [70.0, 70, 70, 70, 70, 71, 72, 300],
}


@pytest.mark.parametrize("metric", ["heart_rate", "temp_c", "systolic_bp"])
def test_sql_baseline_matches_python(tmp_path: Path, metric: str) -> None:
    scale = {"heart_rate": 1.0, "temp_c": 0.5, "systolic_bp": 1.5}[metric]
    series = {u: [v * scale for v in values] for u, values in SERIES.items()}
    readings = readings_for(series, metric)
    _, anomalies = analyze(tmp_path, readings)
    sql = {
        int(a["source_row"]): int(a["severity"])
        for a in anomalies
        if a["rule"] == "baseline" and a["metric"] == metric
    }
    expected = python_baseline(readings, metric)
    assert sql == expected
    users = {r["source_row"]: r["user_id"] for r in readings}
    assert {users[row] for row in sql} == {"alice", "bob", "dave"}
    assert len(expected) == 4  # alice 94 and 200, bob 40, dave 300
    other = [a for a in anomalies if a["rule"] == "baseline" and a["metric"] != metric]
    assert other == []  # constant vitals never deviate


def test_sql_baseline_kind_and_value(tmp_path: Path) -> None:
    readings = readings_for({"alice": SERIES["alice"]}, "heart_rate")
    facts, anomalies = analyze(tmp_path, readings)
    baseline = [a for a in anomalies if a["rule"] == "baseline"]
    assert {a["kind"] for a in baseline} == {"baseline_deviation"}
    assert sorted(a["value"] for a in baseline) == [94.0, 200.0]
    assert facts["anomalies"]["by_rule"]["baseline"] == 2


def test_sql_flat_baseline_and_resolution_floor(tmp_path: Path) -> None:
    series = {
        "flat": [70.0] * 8 + [73, 80],  # MAD 0: 73 is within a few steps, 80 is not
        "temp": [36.7, 36.8, 36.9, 36.8, 36.7, 36.9, 36.8, 36.8, 37.6],
    }
    readings = readings_for({"flat": series["flat"]}, "heart_rate")
    readings += [
        {**r, "source_row": r["source_row"] + 100}
        for r in readings_for({"temp": series["temp"]}, "temp_c")
    ]
    _, anomalies = analyze(tmp_path, readings)
    found = {
        (a["user_id"], a["metric"], a["value"], a["severity"])
        for a in anomalies
        if a["rule"] == "baseline"
    }
    # 80 bpm: a strong deviation (M ≈ 8) but NEWS2 0: low. 37.6 °C: M ≈ 5.4, normal: low
    assert found == {("flat", "heart_rate", 80.0, 1), ("temp", "temp_c", 37.6, 1)}
    assert python_baseline(readings, "heart_rate") == {10: 1}
    assert python_baseline(readings, "temp_c") == {109: 1}
