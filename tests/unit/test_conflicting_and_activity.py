"""Issue 13: conflicting readings are scored (flagged `conflicting`), heart-rate findings
during activity are marked and at most low unless NEWS2 3, a baseline finding on a reading
with a clinical finding is identifiable, and blood-pressure findings carry the pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthpipe.dataops.analysis import analyze_parquet, findings
from healthpipe.dataops.engine import EngineLimits
from support.readings import write_processed

COLUMNS = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def run(
    tmp_path: Path, rows: list[tuple[Any, ...]], rejected: Path | None = None, threads: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    parquet = write_processed(tmp_path / "p.parquet", rows)
    out = tmp_path / "a.parquet"
    facts = analyze_parquet(
        parquet,
        out,
        limits=EngineLimits(memory_limit_mb=128, threads=threads, temp_dir=tmp_path / "t"),
        rejected_csv=rejected,
    )
    con = duckdb.connect(":memory:")
    try:
        cur = con.execute(f"SELECT * FROM '{out}' ORDER BY source_row, metric, rule")
        names = [d[0] for d in cur.description or []]
        anomalies = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return facts, anomalies


def test_a_conflicting_reading_is_scored_and_flagged(tmp_path: Path) -> None:
    # GIVEN a kept normal reading (HR 70) and, rejected at the same instant as
    # conflicting_reading, an abnormal one (HR 96); a plain duplicate and a row with another
    # reason too are not scored
    rows = [(1, "2026-01-01 00:00:00+00", "p1", 70.0, 98.0, 10.0, 36.8, 115.0, 75.0)]
    rejected = tmp_path / "rejected.csv"
    rejected.write_text(
        f"source_row,reject_reason,{COLUMNS},raw_line\n"
        "2,conflicting_reading,2026-01-01T00:00:00Z,p1,96,98,10,36.8,115,75,\n"
        "3,duplicate_reading,2026-01-01T00:00:00Z,p1,70,98,10,36.8,115,75,\n"
        "4,conflicting_reading;invalid_spo2,2026-01-01T00:00:00Z,p1,150,x,10,36.8,115,75,\n"
        "5,missing_user_id,2026-01-01T00:00:00Z,,150,98,10,36.8,115,75,\n"
    )
    # WHEN analyzed with the rejected rows
    facts, anomalies = run(tmp_path, rows, rejected)
    # THEN the abnormal value is a finding, flagged conflicting
    assert [(a["source_row"], a["kind"], a["value"], a["conflicting"]) for a in anomalies] == [
        (2, "raised_heart_rate_news2_1", 96.0, True)
    ]
    assert facts["anomalies"]["conflicting"] == 1
    assert facts["readings"] == 1  # statistics describe the valid readings
    (user,) = facts["users"]["top"]
    assert (user["readings"], user["readings_flagged"], user["flagged_pct"]) == (1, 0, 0.0)
    # and without the rejected file nothing is found
    (tmp_path / "again").mkdir()
    _, none = run(tmp_path / "again", rows)
    assert none == []


def test_heart_rate_during_activity_is_marked_and_low(tmp_path: Path) -> None:
    # 122 bpm with 2,500 steps; 118 bpm the minute after (activity in the reading before);
    # 135 bpm during activity (NEWS2 3 stays high); 122 bpm at rest (medium)
    rows = [
        (1, "2026-01-01 00:00:00+00", "p1", 122.0, 98.0, 2500.0, 36.8, 115.0, 75.0),
        (2, "2026-01-01 00:01:00+00", "p1", 118.0, 98.0, 20.0, 36.8, 115.0, 75.0),
        (3, "2026-01-01 00:02:00+00", "p1", 135.0, 93.0, 3000.0, 36.8, 115.0, 75.0),
        (4, "2026-01-01 04:59:00+00", "p1", 70.0, 98.0, 20.0, 36.8, 115.0, 75.0),
        (5, "2026-01-01 05:00:00+00", "p1", 122.0, 98.0, 20.0, 36.8, 115.0, 75.0),
    ]
    _, anomalies = run(tmp_path, rows)
    got = [(a["source_row"], a["metric"], a["severity"], a["during_activity"]) for a in anomalies]
    assert got == [
        (1, "heart_rate", 1, True),
        (2, "heart_rate", 1, True),
        (3, "heart_rate", 3, True),
        (3, "spo2", 2, True),  # marked, not capped: activity context is for heart rate
        (5, "heart_rate", 2, False),
    ]


def test_a_baseline_finding_on_a_clinical_reading_is_identifiable(tmp_path: Path) -> None:
    hr = [70.0, 71, 69, 70, 72, 70, 71, 69, 40, 95]  # 40: NEWS2 3 and a deviation; 95: both
    rows = [
        (i + 1, f"2026-01-01 {i:02d}:00:00+00", "p1", v, 98.0, 10.0, 36.8, 115.0, 75.0)
        for i, v in enumerate(hr)
    ]
    facts, anomalies = run(tmp_path, rows)
    baseline = [(a["source_row"], a["with_clinical_finding"]) for a in anomalies
                if a["rule"] == "baseline"]  # fmt: skip
    assert baseline == [(9, True), (10, True)]
    assert facts["anomalies"]["baseline_with_clinical_finding"] == 2


def test_bp_findings_carry_the_pair_and_the_trigger(tmp_path: Path) -> None:
    rows = [
        (1, "2026-01-01 00:00:00+00", "p1", 70.0, 98.0, 10.0, 36.8, 170.0, 121.0),
        (2, "2026-01-01 00:10:00+00", "p2", 70.0, 98.0, 10.0, 36.8, 118.0, 95.0),
        (3, "2026-01-01 00:20:00+00", "p3", 70.0, 98.0, 10.0, 36.8, 185.0, 125.0),
    ]
    facts, anomalies = run(tmp_path, rows)
    got = [(a["kind"], a["systolic_bp"], a["diastolic_bp"], a["bp_trigger"]) for a in anomalies]
    assert got == [
        ("hypertensive_crisis", 170.0, 121.0, "diastolic"),
        ("hypertension_stage_2", 118.0, 95.0, "diastolic"),
        ("hypertensive_crisis", 185.0, 125.0, "both"),
    ]
    top = {
        (a["systolic_bp"], a["diastolic_bp"], a["bp_trigger"]) for a in facts["anomalies"]["top"]
    }
    assert (170.0, 121.0, "diastolic") in top


def test_conflicting_readings_are_scored_the_same_by_groups_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The groups of users run side by side on cursors of their own (two threads): the
    conflicting readings, which they read from a table of the analysis's connection, are
    scored as by one group on one thread."""
    rows, rejected_lines = [], []
    for user in range(12):
        for minute in range(20):
            at = f"2026-01-01 00:{minute:02d}:00+00"
            rows.append((len(rows) + 1, at, f"p{user:02d}", 70.0, 98.0, 10.0, 36.8, 115.0, 75.0))
            if minute % 4 == 0:  # the same instant, other values: conflicting
                line = f"{at.replace(' ', 'T')[:19]}Z,p{user:02d},{96 + minute},91,10,38.4,165,95,"
                rejected_lines.append(f"{1000 + len(rejected_lines)},conflicting_reading,{line}")
    rejected = tmp_path / "rejected.csv"
    rejected.write_text(
        f"source_row,reject_reason,{COLUMNS},raw_line\n" + "\n".join(rejected_lines) + "\n"
    )
    (tmp_path / "one").mkdir()
    one = run(tmp_path / "one", rows, rejected)
    monkeypatch.setattr(findings, "MIN_READINGS_PER_GROUP", 50)
    monkeypatch.setattr(findings, "READINGS_PER_MB", 0)
    (tmp_path / "many").mkdir()
    many = run(tmp_path / "many", rows, rejected, threads=2)
    assert len({a["source_row"] for a in one[1] if a["conflicting"]}) == 60  # every one
    assert many == one
