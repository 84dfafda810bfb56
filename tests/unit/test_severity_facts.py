"""The severity-first facts of an analysis, on real DuckDB runs: every high-severity
participant with the worst reading (BP as a pair), red scores per parameter, and the whole
file's longest episode even when the list holds only the most severe ones."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops.analysis import AnalysisLimits, analyze_parquet, findings
from healthpipe.dataops.engine import EngineLimits
from healthpipe.dataops.severe import apply_severity_facts, severity_facts
from support.duck import insert_rows

T0 = datetime(2026, 1, 3, 10, 0, tzinfo=UTC)
NORMAL = {"heart_rate": 70.0, "spo2": 98.0, "steps": 0.0, "temp_c": 36.8}
COLUMNS = ("heart_rate", "spo2", "steps", "temp_c", "systolic_bp", "diastolic_bp")


def reading(user: str, minute: int, **vitals: float) -> dict[str, Any]:
    return {
        **NORMAL,
        "systolic_bp": 118.0,
        "diastolic_bp": 76.0,
        **vitals,
        "user_id": user,
        "event_time": T0 + timedelta(minutes=minute),
    }


def analyze(
    tmp_path: Path, readings: list[dict[str, Any]], *, severity: bool = False, **limits: int
) -> dict[str, Any]:
    """The facts with the severity facts: read from the anomaly file once it is written,
    or (`severity`) by `analyze_parquet` itself."""
    parquet = tmp_path / "readings.parquet"
    parquet.unlink(missing_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE r (source_row BIGINT, event_time TIMESTAMPTZ, user_id VARCHAR, "
            + ", ".join(f"{c} DOUBLE" for c in COLUMNS)
            + ")"
        )
        insert_rows(
            con,
            "r",
            [
                (n, r["event_time"], r["user_id"], *(r[c] for c in COLUMNS))
                for n, r in enumerate(readings, start=1)
            ],
        )
        con.execute(f"COPY r TO '{parquet}' (FORMAT parquet)")
    finally:
        con.close()
    engine = EngineLimits(memory_limit_mb=128, threads=1, temp_dir=tmp_path / "d")
    anomalies = tmp_path / "anomalies.parquet"
    facts = analyze_parquet(
        parquet,
        anomalies,
        limits=engine,
        analysis_limits=AnalysisLimits(**limits),
        severity=severity,
    )
    if severity:
        return facts
    users = [str(u["user_id"]) for u in facts["users"]["top"]]
    return apply_severity_facts(facts, severity_facts(anomalies, users, limits=engine))


def test_high_participants_are_named_with_the_worst_reading_and_the_bp_pair(
    tmp_path: Path,
) -> None:
    readings = [reading("calm", m) for m in range(20)]
    readings += [reading("p1", 0, spo2=86.0), reading("p1", 5, spo2=85.0)]
    readings += [reading("p2", 0, systolic_bp=170.0, diastolic_bp=121.0)]
    readings += [reading("p3", 0, systolic_bp=230.0, diastolic_bp=100.0, heart_rate=35.0)]
    facts = analyze(tmp_path, readings)
    people = {p["user_id"]: p for p in facts["high_participants"]["list"]}
    assert facts["high_participants"]["total"] == 3 and set(people) == {"p1", "p2", "p3"}
    (spo2,) = people["p1"]["findings"]
    assert (spo2["metric"], spo2["value"], spo2["count"]) == ("spo2", 85, 2)
    assert spo2["event_time"].startswith("2026-01-03T10:05")
    (bp,) = people["p2"]["findings"]
    assert (bp["kind"], bp["systolic"], bp["diastolic"]) == ("hypertensive_crisis", 170, 121)
    # red scores: SpO2 85 and 86, heart rate 35, systolic 230 (a crisis row; NEWS2 3 too)
    assert facts["red_scores"]["by_metric"] == {"heart_rate": 1, "spo2": 2, "systolic_bp": 1}
    assert facts["red_scores"]["readings"] == 3
    assert all(u["readings_flagged"] <= u["readings"] for u in facts["users"]["top"])


def test_longest_episode_is_found_beyond_the_listed_episodes(tmp_path: Path) -> None:
    # GIVEN a short severe episode and a long mild one, and a list of one episode
    readings = [reading("severe", m, spo2=88.0) for m in range(3)]
    readings += [reading("mild", m, heart_rate=100.0) for m in range(8)]
    facts = analyze(tmp_path, readings, top_episodes=1)
    # THEN the list holds the severe one and `longest` the 8-reading one
    (listed,) = facts["episodes"]["list"]
    assert listed["user_id"] == "severe"
    longest = facts["episodes"]["longest"]
    assert (longest["user_id"], longest["readings"]) == ("mild", 8)


def test_severity_facts_beside_the_join_are_those_of_the_anomaly_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`analyze_parquet(severity=True)` reads the severity facts from the anomaly parts
    while they are joined: the same facts as `severity_facts` on the joined file, with
    one group of users (no parts) and with several."""
    rng = random.Random(7)
    readings = [
        reading(
            f"u{user:02d}",
            minute,
            heart_rate=rng.choice([32.0, 45.0, 70.0, 118.0, 135.0]),
            spo2=rng.choice([84.0, 90.0, 93.0, 98.0]),
            temp_c=rng.choice([34.9, 36.8, 38.5, 39.4]),
            systolic_bp=rng.choice([88.0, 118.0, 150.0, 185.0, 225.0]),
            diastolic_bp=rng.choice([60.0, 76.0, 95.0, 125.0]),
        )
        for user in range(30)
        for minute in range(0, 400, 5)
    ]
    for per_group in (10_000, 300):  # one group; then about eight
        monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", per_group)
        monkeypatch.setattr(findings, "READINGS_PER_MB", 1)
        run = tmp_path / str(per_group)
        run.mkdir()
        expected = analyze(run, readings)
        beside = analyze(run, readings, severity=True)
        assert expected["high_participants"]["total"] > 10 and expected["red_scores"]["readings"]
        assert beside == expected
