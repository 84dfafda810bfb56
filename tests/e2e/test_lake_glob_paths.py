"""A workspace whose path holds DuckDB's glob characters (`[`, `]`, `*`, `?`): `healthpipe
run` ingests the file it was given, and `healthpipe query` and `healthpipe history` read that
workspace's lake, all of it, and nothing else — not a sibling folder the unescaped path would
match as a pattern (dataops/engine.py::source_literal, dataops/lake.py)."""

from __future__ import annotations

import csv
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app

pytestmark = pytest.mark.xdist_group("lake_glob_paths")

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
USERS = ("p-glob-1", "p-glob-2", "p-glob-3")
# tests/conftest.py: ingest never sees "now" before this (its fixtures are per test).
DATA_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def vitals(path: Path) -> Path:
    """Two days of readings for three users, one of them low enough to be a finding."""
    lines = [HEADER]
    for day in (4, 5):
        for minute in range(8):
            for n, user in enumerate(USERS):
                hr = 38 if (n == 0 and minute == 3) else 60 + minute + n
                stamp = f"2025-05-{day:02d}T07:{minute:02d}:{n:02d}Z"
                lines.append(f"{stamp},{user},{hr},97,{minute},36.{5 + n},120,7{n}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def sample_of(source: Path, target: Path) -> None:
    """One row of `source` at `target`: what a decoy workspace's lake holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_parquet('{source}') LIMIT 1) TO '{target}'")
    con.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`run` of one file into `<tmp>/study[2025]*?/ws`, beside a decoy `<tmp>/study2*?/ws`
    (which the unescaped path matches as a glob) holding another file under the same name
    in raw/ and, after the run, one row of each of the workspace's lake files."""
    import healthpipe.stages.ingest as ingest

    tmp_path = tmp_path_factory.mktemp("globs")
    ws = tmp_path / "study[2025]*?" / "ws"
    decoy = tmp_path / "study2*?" / "ws"
    (decoy / "bucket" / "raw").mkdir(parents=True)
    (decoy / "bucket" / "raw" / "may.csv").write_text(
        HEADER + "2025-05-04T07:00:00Z,someone-else,70,97,0,36.6,120,70\n", encoding="utf-8"
    )
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HEALTHPIPE_"):
                mp.delenv(name)
        mp.chdir(tmp_path)
        mp.setattr(ingest, "utc_now", lambda: max(datetime.now(UTC), DATA_NOT_BEFORE))
        result = invoke("run", str(vitals(tmp_path / "may.csv")), "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    bucket = ws / "bucket"
    parquet = sorted(bucket.glob("lake/readings/*/*/*.parquet"))
    parquet += sorted(bucket.glob("analyzed/*_anomalies.parquet"))
    assert len(parquet) >= 3
    for path in parquet:
        sample_of(path, decoy / "bucket" / path.relative_to(bucket))
    return {"ws": ws, "outcome": json.loads(result.stdout)["files"][0]}


def processed_rows(ws: Path) -> list[dict[str, str]]:
    """An independent reading: Python's csv module over the processed CSV."""
    rows: list[dict[str, str]] = []
    for path in sorted((ws / "bucket" / "processed" / "csv").rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def query(ws: Path, sql: str) -> Any:
    result = invoke("query", sql, "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["rows"]


def test_query_reads_every_row_of_this_workspace_only(ran: dict[str, Any]) -> None:
    ws, outcome = ran["ws"], ran["outcome"]
    rows = processed_rows(ws)
    assert len(rows) == int(outcome["rows"]["valid"]) == 2 * 8 * len(USERS)
    assert query(ws, "select count(*) from readings") == [[len(rows)]]
    assert query(ws, "select count(*) from findings") == [[int(outcome["anomalies"])]]
    assert int(outcome["anomalies"]) > 1


def test_history_counts_every_reading_of_the_participant(ran: dict[str, Any]) -> None:
    ws = ran["ws"]
    mine = [r for r in processed_rows(ws) if r["user_id"] == USERS[0]]
    result = invoke("history", USERS[0], "-w", str(ws), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["readings"] == len(mine) == 16
    heart = next(v for v in shown["vitals"] if v["metric"] == "heart_rate")
    assert heart["min"] == 38
