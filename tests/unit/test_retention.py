"""`healthpipe retention`: raw uploads and reports older than retention_days, by mtime."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import healthpipe.commands.retention as retention
from healthpipe.cli import app

DAY = 86_400
NOW = 1_900_000_000.0  # 2030-03-17: a clock shifted years ahead of the files' real mtimes


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def put(path: Path, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x", encoding="utf-8")
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    bucket = ws / "bucket"
    (ws / "healthpipe.db").parent.mkdir(parents=True)
    (ws / "healthpipe.db").touch()
    put(bucket / "raw" / "old.csv", 31)
    put(bucket / "raw" / "nested" / "old.csv.gz", 45)
    put(bucket / "raw" / "new.csv", 29)
    put(bucket / "reports" / "aaaa.html", 40)
    put(bucket / "reports" / "cards" / "2025-aaaa.json", 40)
    put(bucket / "reports" / "index.html", 40)  # kept: rebuilt from the remaining cards
    put(bucket / "reports" / "bbbb.html", 1)
    put(bucket / "processed" / "parquet" / "dt=2025-06-01" / "a-aaaa.parquet", 400)
    put(bucket / "analyzed" / "aaaa.json", 400)
    monkeypatch.setattr(retention, "clock", lambda: NOW)
    return ws


def names(ws: Path) -> list[str]:
    return sorted(str(p.relative_to(ws / "bucket")) for p in (ws / "bucket").rglob("*.*"))


def test_files_older_than_retention_days_by_mtime_are_found(ws: Path) -> None:
    found = retention.expired(ws / "bucket", 30, NOW)
    assert found.counts() == {"raw": 2, "reports": 2}
    assert [p.name for p in found.files["raw"]] == ["old.csv.gz", "old.csv"]
    assert retention.expired(ws / "bucket", 30, NOW - 2 * DAY).counts() == {
        "raw": 1,
        "reports": 2,
    }


def test_dry_run_is_the_default_and_deletes_nothing(ws: Path) -> None:
    before = names(ws)
    result = invoke("retention", "-w", str(ws), "--days", "30")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout and "raw: 2 file(s), reports: 2 file(s)" in result.stdout
    assert names(ws) == before


def test_apply_deletes_expired_raw_and_reports_only(
    ws: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HEALTHPIPE_RETENTION_DAYS", "30")
    with caplog.at_level("INFO", logger="healthpipe.commands.retention"):
        result = invoke("retention", "-w", str(ws), "--apply", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "retention_days": 30,
        "applied": True,
        "files": {"raw": 2, "reports": 2},
    }
    assert names(ws) == [
        "analyzed/aaaa.json",
        "processed/parquet/dt=2025-06-01/a-aaaa.parquet",
        "raw/new.csv",
        "reports/bbbb.html",
        "reports/index.html",
    ]
    assert "old.csv" not in caplog.text and "aaaa" not in caplog.text  # counts, not names


def test_without_retention_days_every_file_is_kept(ws: Path) -> None:
    before = names(ws)
    result = invoke("retention", "-w", str(ws), "--apply")
    assert result.exit_code == 0, result.output
    assert "not set" in result.stdout
    assert names(ws) == before


def test_retention_days_below_one_is_refused(ws: Path) -> None:
    result = invoke("retention", "-w", str(ws), "--days", "0")
    assert result.exit_code == 2
