"""The generator's drift option: a daily series where one user's vital moves linearly over
the last days, and `healthpipe generate --days N --drift …` writing one dated file per day."""

from __future__ import annotations

import csv
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.synthetic import (
    Drift,
    Offset,
    SyntheticSpec,
    daily_specs,
    generate_csv,
    parse_drift,
    synthetic_sql,
)

END = datetime(2025, 6, 30, 12, 0)


def test_a_drift_is_written_user_vital_change_days() -> None:
    assert parse_drift("user_003:heart_rate:+15:14") == Drift(3, "heart_rate", 15.0, 14)
    assert parse_drift("9:systolic_bp:12:28") == Drift(9, "systolic_bp", 12.0, 28)
    for bad in ("user_003:heart_rate:+15", "bob:heart_rate:1:2", "3:pulse:1:2", "3:spo2:x:2"):
        with pytest.raises(ValueError, match="drift"):
            parse_drift(bad)


def test_a_drift_ramps_over_its_last_days_and_reaches_its_change_on_the_last() -> None:
    drift = Drift(0, "heart_rate", 14.0, 14)
    amounts = [drift.amount(day, 30) for day in range(30)]
    assert amounts[:16] == [0.0] * 16
    assert amounts[16:] == pytest.approx([float(k) for k in range(1, 15)])


def test_daily_specs_end_a_day_apart_each_with_its_seed_and_offsets() -> None:
    specs = daily_specs(SyntheticSpec(end=END, seed=5), 3, (Drift(2, "spo2", -2.0, 2),))
    assert [s.end for s in specs] == [END - timedelta(days=2), END - timedelta(days=1), END]
    assert [s.seed for s in specs] == [5, 6, 7]
    assert [s.offsets for s in specs] == [
        (Offset(2, "spo2", 0.0),),
        (Offset(2, "spo2", -1.0),),
        (Offset(2, "spo2", -2.0),),
    ]


def test_without_offsets_the_generated_sql_is_unchanged() -> None:
    spec = SyntheticSpec(rows=10, end=END)
    zero = SyntheticSpec(rows=10, end=END, offsets=(Offset(1, "heart_rate", 0.0),))
    assert synthetic_sql(spec) == synthetic_sql(zero)


def _hr_by_user(path: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            found.setdefault(row["user_id"], []).append(float(row["heart_rate"]))
    return found


def test_an_offset_moves_only_its_users_readings(tmp_path: Path) -> None:
    base = SyntheticSpec(rows=400, users=4, bad_row_rate=0, anomalies=False, end=END)
    plain = _hr_by_user(generate_csv(base, tmp_path / "a.csv"))
    moved = _hr_by_user(
        generate_csv(
            SyntheticSpec(
                rows=400,
                users=4,
                bad_row_rate=0,
                anomalies=False,
                end=END,
                offsets=(Offset(1, "heart_rate", 20.0),),
            ),
            tmp_path / "b.csv",
        )
    )
    assert statistics.median(moved["user_001"]) - statistics.median(plain["user_001"]) == 20
    for user in ("user_000", "user_002", "user_003"):
        assert moved[user] == plain[user]


def test_generate_days_writes_one_dated_file_per_day(tmp_path: Path) -> None:
    out = tmp_path / "series" / "v.csv"
    result = CliRunner().invoke(
        app,
        [
            "generate", "--out", str(out), "--rows", "20", "--users", "2", "--days", "3",
            "--end", "2025-06-30T12:00:00", "--drift", "user_001:heart_rate:+30:2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["v-2025-06-28.csv", "v-2025-06-29.csv", "v-2025-06-30.csv"]
    assert "3 files" in result.stdout


def test_generate_refuses_a_malformed_drift_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["generate", "--out", str(tmp_path / "v.csv"), "--drift", "user_001:pulse:+3:2"]
    )
    assert result.exit_code == 2
    assert "--drift" in result.stderr and len(result.stderr.strip().splitlines()) == 1
