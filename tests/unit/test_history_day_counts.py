"""A processed file as per-participant, per-day histograms (dataops/analysis/day_counts.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from healthpipe.dataops.analysis.day_counts import day_counts
from healthpipe.dataops.engine import EngineLimits
from support.readings import write_processed


def test_counts_per_utc_day_at_the_charts_resolution(tmp_path: Path) -> None:
    late = datetime(2025, 4, 1, 23, 30, tzinfo=UTC)
    early = datetime(2025, 4, 2, 0, 30, tzinfo=UTC)
    parquet = write_processed(
        tmp_path / "p.parquet",
        [
            (1, late, "u1", 71.5, None, 10.0, 36.65, 120.0, 80.0),
            (2, late, "u1", 71.4, None, 10.0, 36.64, 120.4, 80.0),
            (3, early, "u1", 60.0, 97.0, 10.0, None, None, None),
        ],
    )
    got = day_counts(parquet, EngineLimits(memory_limit_mb=128, threads=1))
    d1, d2 = date(2025, 4, 1), date(2025, 4, 2)
    assert got == [  # in user, day and vital order, values ascending
        ("u1", d1, "diastolic_bp", {80: 2}),
        ("u1", d1, "heart_rate", {71: 1, 72: 1}),  # 71.5 half-up, as clinical.chart_value
        ("u1", d1, "systolic_bp", {120: 2}),
        ("u1", d1, "temp_c", {366: 1, 367: 1}),  # tenths of a degree
        ("u1", d2, "heart_rate", {60: 1}),
        ("u1", d2, "spo2", {97: 1}),
    ]
    assert [list(by_value) for *_, by_value in got][3] == [366, 367]
