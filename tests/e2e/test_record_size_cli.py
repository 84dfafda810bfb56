"""`healthpipe run` on the issue's long-record files (issue 15, item 1): a 5,000,000-digit
heart rate was dropped (`input: 2, valid: 2, rejected: 0`, exit 0); it is now rejected in
its place, and a record over 16 MB refuses the file with exit 2 and a one-line reason."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from healthpipe.cli import app

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"


def good(minute: int, heart_rate: str = "70") -> str:
    return f"2025-09-17T12:{minute:02d}:00Z,u1,{heart_rate},98,100,36.8,120,80"


def run(tmp_path: Path, heart_rate: str) -> tuple[int, dict[str, object], Path]:
    source = tmp_path / "long.csv"
    source.write_text("\n".join([HEADER, good(0), good(1, heart_rate), good(2)]) + "\n")
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    (item,) = json.loads(result.stdout)["files"]
    return result.exit_code, item, workspace


def test_a_5mb_heart_rate_is_rejected_in_its_place(tmp_path: Path) -> None:
    code, item, workspace = run(tmp_path, "7" * 5_000_000)
    assert code == 0 and item["status"] == "processed"
    assert item["rows"] == {"input": 3, "valid": 2, "rejected": 1}
    (rejected_csv,) = (workspace / "bucket" / "rejected").rglob("*.csv")
    csv.field_size_limit(sys.maxsize)
    with rejected_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["source_row"], r["reject_reason"]) for r in rows] == [("2", "invalid_heart_rate")]


def test_a_record_over_16mb_refuses_the_file_in_one_line(tmp_path: Path) -> None:
    code, item, _ = run(tmp_path, "7" * (17 * 1024 * 1024))
    assert code == 2 and item["status"] == "rejected"
    error = str(item["error"])
    assert "\n" not in error and "data record 2" in error and "16 MB" in error
