"""`healthpipe history PARTICIPANT` over a workspace that ran three small hand-written files:
the participant is in the first two, not in the third. The pipeline runs once per module."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app
from healthpipe.domain.documents.participant_timeline import (
    FindingKind,
    ParticipantTimeline,
    SourceFile,
    VitalHistory,
)
from healthpipe.report.history import build_history_view, render_history_html
from support.pipeline import ingest_and_analyze

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = [pytest.mark.xdist_group("cli_history"), pytest.mark.clock]

RAW_ID = "alice-7731"
OTHER = "bob-0042"
HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
VITALS = ("heart_rate", "spo2", "steps", "temp_c", "systolic_bp", "diastolic_bp")
# tests/conftest.py: ingest never sees "now" before this (its fixtures are per test).
DATA_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def day_file(path: Path, day: int, users: tuple[str, ...]) -> Path:
    """Ten minutes of readings per user on 2025-03-<day>; the first user's heart rate falls to
    38 bpm on one reading (a NEWS2 3 finding) and one of their rows is unreadable."""
    lines = [HEADER]
    for minute in range(10):
        for n, user in enumerate(users):
            hr = 38 if (n == 0 and minute == 4) else 64 + minute + day
            stamp = f"2025-03-{day:02d}T08:{minute:02d}:{n:02d}Z"
            lines.append(f"{stamp},{user},{hr},97,{minute * 10},36.{5 + n},{118 + day},7{n}\n")
    lines.append(f"2025-03-{day:02d}T09:00:00Z,{users[0]},abc,97,0,36.6,120,75\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace after ingest and analyze of three files, as `run` leaves it but the reports
    (tests/support/pipeline.py), then `history RAW_ID --json` (both once, under the same
    isolation and clock floor as tests/conftest.py)."""
    import os

    import healthpipe.stages.ingest as ingest

    tmp_path = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HEALTHPIPE_"):
                mp.delenv(name)
        mp.chdir(tmp_path)
        mp.setattr(ingest, "utc_now", lambda: max(datetime.now(UTC), DATA_NOT_BEFORE))
        files = [
            day_file(tmp_path / "march-10.csv", 10, (RAW_ID, OTHER)),
            day_file(tmp_path / "march-11.csv", 11, (RAW_ID, OTHER)),
            day_file(tmp_path / "march-12-bob.csv", 12, (OTHER,)),
        ]
        ws = tmp_path / "ws"
        outcomes = ingest_and_analyze(ws, files)  # what `run` stores but the reports
        shown = invoke("history", RAW_ID, "-w", str(ws), "--json")
    assert shown.exit_code == 0, shown.output
    return {"ws": ws, "outcomes": outcomes, "history": json.loads(shown.stdout)}


def participant_rows_by_csv_module(ws: Path, user: str) -> dict[str, list[dict[str, str]]]:
    """An independent reader: Python's csv module over every processed CSV, by file."""
    rows: dict[str, list[dict[str, str]]] = {}
    for path in sorted((ws / "bucket" / "processed" / "csv").rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            mine = [r for r in csv.DictReader(handle) if r["user_id"] == user]
        if mine:
            dataset_id = path.stem.rsplit("-", 1)[-1]
            rows[dataset_id] = mine
    return rows


def test_counts_and_files_equal_an_independent_reading(ran: dict[str, Any]) -> None:
    history, ws = ran["history"], ran["ws"]
    by_file = participant_rows_by_csv_module(ws, RAW_ID)
    assert len(by_file) == 2
    every = [r for rows in by_file.values() for r in rows]
    assert history["readings"] == len(every) == 20  # the unreadable rows are not readings
    assert {f["dataset_id"]: f["readings"] for f in history["files"]} == {
        k: len(v) for k, v in by_file.items()
    }
    assert [f["name"] for f in history["files"]] == ["march-10.csv", "march-11.csv"]
    heart = next(v for v in history["vitals"] if v["metric"] == "heart_rate")
    assert heart["n"] == 20 and heart["min"] == 38
    assert [(d["day"], d["n"]) for d in heart["days"]] == [("2025-03-10", 10), ("2025-03-11", 10)]
    values = sorted(float(r["heart_rate"]) for r in every if r["event_time"] < "2025-03-11")
    assert heart["days"][0]["median"] == (values[4] + values[5]) / 2
    assert heart["latest"] == 64 + 9 + 11 and heart["latest_time"] == "2025-03-11T08:09:00Z"
    assert [v["metric"] for v in history["vitals"]] == list(VITALS)
    # the baseline analyze keeps (history store): the 28 days to 2025-03-11, both files
    (stored,) = [b for b in history["baselines"] if b["metric"] == "heart_rate"]
    every_hr = sorted(float(r["heart_rate"]) for r in every)
    assert (stored["n"], stored["window_end"]) == (20, "2025-03-11")
    assert stored["median"] == (every_hr[9] + every_hr[10]) / 2
    assert all(v["n"] == 20 for v in history["vitals"])


def test_findings_episodes_and_the_json_shape(ran: dict[str, Any]) -> None:
    history = ran["history"]
    document = ParticipantTimeline.model_validate(history)  # the shape is the typed document
    assert history["pseudonym"] == document.pseudonym and document.pseudonym.startswith("P-")
    brady = [f for f in document.findings if f.kind == "bradycardia_news2_3"]
    assert [(f.total, f.by_severity, f.criterion) for f in brady] == [
        (2, {"high": 2}, "heart rate ≤ 40 bpm")
    ]
    assert document.findings_total == sum(f.findings for f in document.files)
    assert document.episodes_total == len(document.episodes)
    assert (document.trends_assessed, document.trends) == (False, [])  # two days only
    assert Path(history["html"]).name == f"{document.pseudonym}.html"
    assert RAW_ID not in json.dumps(history)


def test_the_page_names_the_pseudonym_and_lists_the_files(ran: dict[str, Any]) -> None:
    history = ran["history"]
    page = Path(history["html"])
    assert page.parent == ran["ws"] / "bucket" / "reports" / "history"
    html = page.read_text(encoding="utf-8")
    assert history["pseudonym"] in html and RAW_ID not in html
    assert "march-10.csv" in html and "march-11.csv" in html and "march-12" not in html
    assert "data:image/png;base64," in html and "heart rate ≤ 40 bpm" in html
    assert "Trends not assessed: too few days with readings" in html


def test_a_pseudonym_finds_the_same_participant_and_is_all_it_shows(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    label, ws = ran["history"]["pseudonym"], ran["ws"]
    page = tmp_path / "page.html"
    result = invoke("history", label, "-w", str(ws), "--html", str(page), "--log-json")
    assert result.exit_code == 0, result.output
    assert label in result.stdout and "march-11.csv" in result.stdout
    assert "20 valid readings on 2 day(s) from 2 file(s)" in result.stdout
    assert "heart rate ≤ 40 bpm" in result.stdout and "worst severity high" in result.stdout
    assert RAW_ID not in result.stdout + result.stderr
    assert page.is_file()


# an id that is not in the lake, a pseudonym of no one, and SQL in an id (a quoted literal)
@pytest.mark.parametrize("given", ["carol-1234", "P-0123456789abcdef", "x' OR '1'='1"])
def test_an_unknown_participant_is_one_line_and_exit_2(ran: dict[str, Any], given: str) -> None:
    result = invoke("history", given, "-w", str(ran["ws"]))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "no participant" in result.stderr and given not in result.stderr


def test_a_missing_workspace_is_refused(tmp_path: Path) -> None:
    result = invoke("history", RAW_ID, "-w", str(tmp_path / "none"))
    assert result.exit_code == 2 and "no workspace" in result.stderr


def test_the_page_escapes_names_and_groups_thousands() -> None:
    history = ParticipantTimeline(
        pseudonym="P-0123456789abcdef",
        readings=12345,
        first_reading="2025-03-10T08:00:00Z",
        last_reading="2025-03-10T09:00:00Z",
        vitals=[VitalHistory(metric="steps", n=12345, median=1500, min=0, max=23456)],
        findings=[
            FindingKind(
                kind="x",
                metric="steps",
                label="<b>x</b>",
                reference="",
                criterion="",
                total=1,
                by_severity={"low": 1},
            ),
            FindingKind(
                kind="baseline_deviation",
                metric="heart_rate",
                label="Deviation from own baseline",
                reference="Personal baseline",
                criterion="|modified z| > 3.5",
                total=2,
                by_severity={"low": 2},
            ),
        ],
        findings_total=1,
        files=[SourceFile(dataset_id="abc", name='<img src=x onerror="alert(1)">.csv')],
    )
    html = render_history_html(build_history_view(history), [])
    assert "<img src=x" not in html and "&lt;img src=x" in html and "<b>x</b>" not in html
    assert "12,345 valid readings" in html and "0–23,456" in html
    assert "worst severity" in html and ">low<" in html
    assert "Deviation from own baseline: Heart rate" in html  # which vital deviated
