"""Participants are named by pseudonym only outside the data files: the analysis store, the
status output and the operator's look-up command never hold a raw participant id."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from healthpipe.cli import app
from healthpipe.domain.identity import pseudonym

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp"
IDS = ("PT-ALPHA-0001", "PT-BRAVO-0002", "PT-CHARLIE-0003")


def readings_file(path: Path) -> Path:
    """Abnormal readings for every participant (so each is flagged and has episodes)."""
    lines = [HEADER]
    for n, uid in enumerate(IDS):
        for minute in range(6):
            hr = 140 + n if minute % 2 else 150 + n
            lines.append(f"2020-03-01T10:{minute:02d}:00Z,{uid},{hr},88,0,39.5,185,125")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sqlite_text(db: Path) -> str:
    """Every cell of every table of the workspace database, as text."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        cells = [
            str(cell) for t in tables for row in con.execute(f'SELECT * FROM "{t}"') for cell in row
        ]
    finally:
        con.close()
    return "\n".join(cells)


def test_store_status_and_lookup_hold_pseudonyms_only(tmp_path: Path) -> None:
    # GIVEN a workspace that processed a file whose participants all have findings
    workspace = tmp_path / "ws"
    source = readings_file(tmp_path / "vitals.csv")
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(source), "--json", "--workspace", str(workspace)])
    assert ran.exit_code == 0, ran.output
    # WHEN the store is read directly and through `status --json`
    stored = sqlite_text(workspace / "healthpipe.db")
    status = runner.invoke(app, ["status", "--json", "--workspace", str(workspace)])
    assert status.exit_code == 0, status.output
    # THEN no raw id appears anywhere, and the flagged items are keyed by 64-bit pseudonyms
    for uid in IDS:
        assert uid not in stored
        assert uid not in status.stdout
    secret = (workspace / "pseudonym.key").read_text(encoding="ascii").strip()
    keys = {pseudonym(uid, secret) for uid in IDS}
    assert all(re.fullmatch(r"P-[0-9a-f]{16}", k) for k in keys)
    assert keys <= set(re.findall(r"P-[0-9a-f]{16}", stored))
    top = json.loads(status.stdout)["datasets"][0]["top_anomalies"]
    assert top and all("user_id" not in a and a["user_key"] in keys for a in top)
    # AND the operator's look-up recomputes the same pseudonym for a given id
    looked_up = runner.invoke(app, ["pseudonym", IDS[1], "--workspace", str(workspace)])
    assert looked_up.exit_code == 0, looked_up.output
    assert looked_up.stdout.split() == [pseudonym(IDS[1], secret)]


def test_pseudonym_lookup_without_a_key_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pseudonym", "x", "--workspace", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no pseudonym key" in result.stderr
    assert not (tmp_path / "none").exists()
