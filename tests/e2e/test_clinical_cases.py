"""Issue 13 end to end through `healthpipe run`: the episode cases, benign exercise and a
flat baseline, in one file of several participants (one run keeps the test fast)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from healthpipe.cli import app
from support.readings import write_csv


def row(
    when: str, user: str, hr: float = 70, steps: int = 10, sbp: int = 115, dbp: int = 75
) -> str:
    return f"{when},{user},{hr},98,{steps},36.8,{sbp},{dbp}"


def test_clinical_cases_end_to_end(tmp_path: Path) -> None:
    rows = [
        # heart rate 45, 95, 45: no bradycardia episode
        *(row(f"2025-06-03T10:{m:02d}:00Z", "p_brady", hr=v)
          for m, v in [(0, 45), (10, 95), (20, 45)]),
        # 132/70, 134/70, 190/100: one episode, counted as a crisis
        *(row(f"2025-06-03T10:{m:02d}:00Z", "p_bp", sbp=s, dbp=d)
          for m, (s, d) in [(0, (132, 70)), (10, (134, 70)), (20, (190, 100))]),
        # fast heart rate on Jan 3, 7 and 12: no 216-hour episode
        *(row(f"2025-06-{d:02d}T10:00:00Z", "p_days", hr=130) for d in (3, 7, 12)),
        # 122 bpm while walking: marked, low, no episode
        *(row(f"2025-06-03T10:{m:02d}:00Z", "p_walk", hr=122, steps=2500) for m in (0, 10, 20)),
        # a flat heart rate, then 80 bpm: a baseline finding (MeanAD form), low (NEWS2 0)
        *(row(f"2025-06-03T{h:02d}:00:00Z", "p_flat") for h in range(9)),
        row("2025-06-03T09:00:00Z", "p_flat", hr=80),
    ]  # fmt: skip
    source = tmp_path / "cases.csv"
    write_csv(source, rows)
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    assert item["rows"]["rejected"] == 0
    bucket = workspace / "bucket"
    analysis = json.loads((bucket / "analyzed" / f"{item['dataset_id']}.json").read_text())

    episodes = {(e["user_id"], e["metric"], e["kind"], e["readings"])
                for e in analysis["episodes"]["list"]}  # fmt: skip
    assert episodes == {("p_bp", "blood_pressure", "hypertensive_crisis", 3)}
    assert analysis["episodes"]["by_kind"] == {"hypertensive_crisis": 1}

    con = duckdb.connect(":memory:")
    try:
        found = con.execute(
            "SELECT user_id, metric, kind, severity, during_activity, rule FROM "
            f"'{bucket / analysis['keys']['anomalies']}' WHERE user_id IN ('p_walk', 'p_flat') "
            "ORDER BY user_id, event_time, metric"
        ).fetchall()
    finally:
        con.close()
    assert found == [
        ("p_flat", "heart_rate", "baseline_deviation", 1, False, "baseline"),
        *[("p_walk", "heart_rate", "tachycardia_news2_2", 1, True, "news2")] * 3,
    ]
