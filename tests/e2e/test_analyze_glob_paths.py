"""`healthpipe run` of a file into a workspace whose path holds DuckDB's glob characters
(`[`, `*`, `?`), beside another study's workspace that the unescaped path matches as a glob
(`study[2025]*?` matches `study2-b`), and with TMPDIR under such a folder too. The other
study holds its own data under the same keys (the same file, the same ingest day). Analyze
reads the processed file and the rejected rows of *this* workspace: its counts are those an
independent reading (Python's csv module) makes of this workspace's processed and rejected
CSV, and those of the same run in a plain folder (dataops/engine.py::source_literal)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app
from healthpipe.domain.identity import DatasetKeys

pytestmark = pytest.mark.xdist_group("analyze_glob_paths")

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
# ingest's "now" (the processed keys' day): fixed, so the other study's keys can be named
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NEWS2_3_HEART_RATE = (40.0, 131.0)  # NEWS2 scores 3 at <= 40 and >= 131 bpm


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def vitals(path: Path, users: tuple[str, ...], low: int) -> Path:
    """Two days of readings, the first user at `low` bpm once a day, and one conflicting
    reading (a second value at one instant, rejected as conflicting and still analysed)."""
    lines = [HEADER]
    for day in (4, 5):
        for minute in range(6):
            for n, user in enumerate(users):
                hr = low if (n == 0 and minute == 3) else 60 + minute + n
                stamp = f"2025-05-{day:02d}T07:{minute:02d}:{n:02d}Z"
                lines.append(f"{stamp},{user},{hr},97,{minute},36.{5 + n},120,7{n}\n")
    n = len(users) - 1  # the last user, at its 07:01 reading
    lines.append(f"2025-05-04T07:01:{n:02d}Z,{users[n]},135,97,1,36.{5 + n},120,7{n}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def run(source: Path, ws: Path) -> dict[str, Any]:
    result = invoke("run", str(source), "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout)["files"]
    assert outcome["status"] == "processed", outcome
    return dict(outcome)


def keys_of(source: Path) -> DatasetKeys:
    """The keys ingest gives `source` (content id, stem, ingest day)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return DatasetKeys(digest[:16], source.stem, NOW.strftime("%Y-%m-%d"))


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def news2_heart_rates(rows: list[dict[str, str]]) -> int:
    low, high = NEWS2_3_HEART_RATE
    return sum(1 for r in rows if not low < float(r["heart_rate"]) < high)


def analysis_of(ws: Path, outcome: dict[str, Any]) -> dict[str, Any]:
    path = ws / "bucket" / "analyzed" / f"{outcome['dataset_id']}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("group_rows", [None, 12], ids=["whole", "in-groups"])
def test_analyze_reads_this_workspace_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int | None
) -> None:
    import healthpipe.stages.ingest as ingest

    for name in list(os.environ):
        if name.startswith("HEALTHPIPE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(ingest, "utc_now", lambda: NOW)
    if group_rows:  # analysed in groups of participants (docs/scaling.md)
        monkeypatch.setenv("HEALTHPIPE_ANALYZE_GROUP_ROWS", str(group_rows))
    temp = tmp_path / "tmp[1]*?"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.chdir(tmp_path)
    mine = vitals(_in(tmp_path / "mine"), ("p-a", "p-b", "p-c"), 38)

    # GIVEN another study's workspace `study2-b/ws`, which ran its own file (other
    # participants, one at 150 bpm) and holds it under the keys this file will have
    other = run(vitals(_in(tmp_path / "other"), ("q-x", "q-y"), 150), tmp_path / "study2-b" / "ws")
    other_bucket = tmp_path / "study2-b" / "ws" / "bucket"
    other_keys = keys_of(tmp_path / "other" / "may.csv")
    keys = keys_of(mine)
    for key in ("processed_parquet", "processed_csv", "rejected_csv"):
        target = other_bucket / getattr(keys, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other_bucket / getattr(other_keys, key), target)
    assert other["dataset_id"] != keys.dataset_id

    # WHEN the file runs into `study[2025]*?/ws` (which, unescaped, globs `study2-b/ws`),
    # and the same file into a plain folder
    ws = tmp_path / "study[2025]*?" / "ws"
    outcome = run(mine, ws)
    plain = run(mine, tmp_path / "plain" / "ws")

    # THEN its counts are those of its own processed and rejected rows (csv module)
    assert outcome["dataset_id"] == keys.dataset_id
    processed = csv_rows(ws / "bucket" / keys.processed_csv)
    rejected = csv_rows(ws / "bucket" / keys.rejected_csv)
    assert len(processed) == 2 * 6 * 3 and len(rejected) == 1
    analysis = analysis_of(ws, outcome)
    assert analysis["readings"] == len(processed)
    assert analysis["users"]["total"] == len({r["user_id"] for r in processed}) == 3
    assert analysis["anomalies"]["by_rule"]["news2"] == (
        news2_heart_rates(processed) + news2_heart_rates(rejected)
    )
    assert analysis["metrics"]["heart_rate"]["min"] == min(
        float(r["heart_rate"]) for r in processed
    )
    # AND the same as in a plain folder, and the lake holds these rows
    assert outcome["anomalies"] == plain["anomalies"]
    assert {k: analysis[k] for k in ("readings", "anomalies", "users")} == {
        k: analysis_of(tmp_path / "plain" / "ws", plain)[k]
        for k in ("readings", "anomalies", "users")
    }
    result = invoke("query", "select count(*) from readings", "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == [[len(processed)]]


def _in(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder / "may.csv"
