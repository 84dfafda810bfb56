"""Issue 13 end to end through `healthpipe run`: two readings of one participant at one
instant, 70 and 135 bpm. The second is rejected as `conflicting_reading` (listed in data
quality), yet its dangerous value is in the findings, flagged conflicting, and leads the
analysis: it is never silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from healthpipe.cli import app
from support.readings import write_csv


def test_a_conflicting_dangerous_reading_is_analysed(tmp_path: Path) -> None:
    # GIVEN a participant with normal readings and, at 10:10, a second reading of 135 bpm
    # (NEWS2 3) beside the kept 70 bpm; another participant with normal readings only
    rows = [f"2025-06-03T10:{m:02d}:00Z,p_conf,70,98,10,36.8,115,75" for m in (0, 10, 20)]
    rows.insert(2, "2025-06-03T10:10:00Z,p_conf,135,98,10,36.8,115,75")
    rows += [f"2025-06-03T10:{m:02d}:00Z,p_calm,72,98,10,36.8,115,75" for m in (0, 10, 20)]
    source = tmp_path / "conflict.csv"
    write_csv(source, rows)
    workspace = tmp_path / "ws"

    # WHEN the file goes through the whole pipeline
    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])

    # THEN the 135 is rejected as conflicting_reading, and data quality says so
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    assert (item["rows"]["valid"], item["rows"]["rejected"]) == (6, 1)
    bucket = workspace / "bucket"
    analysis = json.loads((bucket / "analyzed" / f"{item['dataset_id']}.json").read_text())
    assert analysis["data_quality"]["reasons"] == {"conflicting_reading": 1}

    # AND its value is a finding of the analysis, flagged conflicting, high (NEWS2 3)
    con = duckdb.connect(":memory:")
    try:
        found = con.execute(
            "SELECT metric, kind, severity, value, conflicting FROM "
            f"'{bucket / analysis['keys']['anomalies']}' WHERE rule = 'news2'"
        ).fetchall()
    finally:
        con.close()
    assert found == [("heart_rate", "tachycardia_news2_3", 3, 135.0, True)]
    assert analysis["anomalies"]["conflicting"] == 1
    assert analysis["anomalies"]["by_severity"].get("high") == 1
    top = analysis["anomalies"]["top"][0]
    assert (top["kind"], top["value"], top["conflicting"]) == ("tachycardia_news2_3", 135.0, True)
