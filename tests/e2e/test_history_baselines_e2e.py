"""Issue 18 (2) end to end: two daily files through `healthpipe run`; the second file's
baselines come from the participant's history (the first file) plus the file itself."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from healthpipe.bootstrap import build_local
from healthpipe.cli import app
from healthpipe.config import load_settings
from healthpipe.dataops.analysis import facts as facts_module
from healthpipe.dataops.analysis.day_counts import DayCount, day_counts
from healthpipe.dataops.engine import EngineLimits
from healthpipe.domain import baseline as bl
from healthpipe.domain import history as hi
from healthpipe.domain.documents import (
    Analysis,
    DayHistogram,
    ParticipantHistory,
    ProcessingComplete,
)
from healthpipe.domain.identity import analysis_key
from healthpipe.orchestration.runs import upload_event, upload_raw
from healthpipe.stages import analyze_history
from healthpipe.stages.analyze import analyze, analyze_again
from healthpipe.stages.ingest import ingest
from support.pipeline import ingest_and_analyze
from support.readings import write_csv

pytestmark = pytest.mark.clock  # baseline windows, with validation's now (tests/conftest.py)


def row(when: str, user: str, hr: float) -> str:
    return f"{when},{user},{hr},98,10,36.8,115,75"


def test_second_file_is_judged_against_the_participants_history(tmp_path: Path) -> None:
    # day 1: 30 readings at 59-61 bpm; day 2: 9 readings at 77-79 bpm (normal band, so no
    # clinical finding). Alone, day 2 is a tight series around 78 with nothing to flag; against
    # the 28 days before it (median 60, MAD 1) every one of its readings deviates.
    day1 = [
        row(f"2025-06-01T{h:02d}:{m:02d}:00Z", "p_shift", hr=59 + (m // 10) % 3)
        for h in range(10)
        for m in (0, 10, 20)
    ]
    day2 = [row(f"2025-06-02T{h:02d}:00:00Z", "p_shift", hr=77 + h % 3) for h in range(9)] + [
        row(f"2025-06-02T{h:02d}:30:00Z", "p_new", hr=70 + h % 2) for h in range(9)
    ]
    first = write_csv(tmp_path / "day1.csv", day1)
    second = write_csv(tmp_path / "day2.csv", day2)
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        app, ["run", str(first), str(second), "--json", "--workspace", str(workspace)]
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["files"]
    bucket = workspace / "bucket"
    analyses = [
        json.loads((bucket / "analyzed" / f"{item['dataset_id']}.json").read_text())
        for item in items
    ]
    one, two = sorted(analyses, key=lambda a: a["source"]["key"])
    assert {u["user_id"]: u["has_history"] for u in one["users"]["top"]} == {"p_shift": False}
    assert {u["user_id"]: u["has_history"] for u in two["users"]["top"]} == {
        "p_shift": True,
        "p_new": False,  # no history yet: its baseline is the file's alone
    }
    con = duckdb.connect(":memory:")
    try:
        found = con.execute(
            f"SELECT user_id, kind, count(*) FROM '{bucket / two['keys']['anomalies']}' "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert found == [("p_shift", "baseline_deviation", 9)]
    # the analysis states the baseline it used: 39 readings from 2025-05-05 to 2025-06-02
    (shift,) = [u for u in two["users"]["top"] if u["user_id"] == "p_shift"]
    used = shift["baselines"]["heart_rate"]
    assert (used["median"], used["mad"], used["n"]) == (60, 1, 39)
    assert (used["window_start"], used["window_end"]) == ("2025-05-05", "2025-06-02")
    assert "baselines" not in {k for u in one["users"]["top"] for k in u}  # file-only: SQL's

    # the file alone would flag nothing: its own median 78 and MAD 1
    alone = hi.participant_history(
        "P-0000000000000000",
        [],
        [DayHistogram(pseudonym="P-0000000000000000", day="2025-06-02", dataset_id="x",
                      bins={"heart_rate": {77: 3, 78: 3, 79: 3}})],
        *hi.window(hi.date(2025, 6, 2), hi.date(2025, 6, 2), 28),
    ).baselines["heart_rate"]  # fmt: skip
    assert (alone.median, alone.mad) == (78, 1)
    assert all(
        abs(bl.modified_z(x, alone.median, alone.mad, alone.meanad, 1.0) or 0) <= bl.THRESHOLD
        for x in (77, 78, 79)
    )
    html = (bucket / "reports" / f"{two['dataset_id']}.html").read_text()
    assert "no history yet" in html


class _Counts(list[DayCount]):
    """The file's day counts, in a list a weak reference can follow."""


def test_the_day_counts_histories_and_histograms_are_let_go_before_the_anomalies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 17: the day counts only build the file's histograms, and the analysis needs
    # only the histories' baselines: held through it they were about 25 and 20 MB of a
    # 2M-row file's (docs/baselines.md, "In the analyze stage")
    # ... nor the file's histograms: they wait on disk to be saved (a 50M-row file of the
    # harness has 36k participant-days of ~1,400 readings), and the save beside the
    # compute reads them one at a time
    made: list[weakref.ref[_Counts]] = []
    alive: list[tuple[bool, bool, bool]] = []

    def counts(parquet: Path, limits: EngineLimits) -> list[DayCount]:
        found = _Counts(day_counts(parquet, limits))
        made.append(weakref.ref(found))
        return found

    find = facts_module.find_anomalies

    def checked(*args: Any, **kwargs: Any) -> Any:
        # the history phase ran beside the compute's first scan: done once its baselines
        # are in, before the anomalies are found
        objects = gc.get_objects()
        histories = any(isinstance(o, ParticipantHistory) for o in objects)
        packed = sum(isinstance(o, hi.PackedDayHistogram) for o in objects)
        alive.append((made[-1]() is not None, histories, packed > 1))
        return find(*args, **kwargs)

    monkeypatch.setattr(analyze_history, "day_counts", counts)
    monkeypatch.setattr(facts_module, "find_anomalies", checked)
    rows = [
        row(f"2025-06-0{d}T{h:02d}:00:00Z", f"p{h % 6}", hr=60 + h % 3)
        for d in (1, 2)
        for h in range(12)
    ]  # 12 participant-days, 12 histograms
    source = write_csv(tmp_path / "day1.csv", rows)
    ingest_and_analyze(tmp_path / "ws", [source])  # as `run` would, without its report
    assert alive == [(False, False, False)]


def test_a_re_analysis_finds_the_history_its_first_analysis_used(tmp_path: Path) -> None:
    # a file spanning two days (06-29, 06-30) has a window from 06-01 (28 days before its
    # first day); storing its histograms dropped its participants' days before 06-02 (28 days
    # before its last day), so analysing it again (`healthpipe forget` does) lost 06-01's
    # history and gave other baselines than the first analysis
    history = [row(f"2025-06-01T{h:02d}:00:00Z", "p1", hr=60 + h % 3) for h in range(10)]
    spans = [
        row(f"2025-06-{d}T{h:02d}:00:00Z", "p1", hr=70 + h % 3) for d in (29, 30) for h in (0, 12)
    ]
    runtime = build_local(load_settings({"workspace": tmp_path / "ws", "analyst": "builtin"}))
    try:
        used = []
        for name, rows in (("one.csv", history), ("two.csv", spans)):
            key = upload_raw(runtime, write_csv(tmp_path / name, rows))
            (processed,) = ingest(upload_event(runtime, key), runtime.ports).events
            analyze(processed, runtime.ports)
        detail = ProcessingComplete.model_validate(processed.detail)
        for _ in range(2):
            analysis = runtime.store.get_document(analysis_key(str(detail.dataset_id)), Analysis)
            (p1,) = analysis.users.top
            baseline = (p1.baselines or {}).get("heart_rate")
            used.append((p1.has_history, baseline.n if baseline else None))
            analyze_again(detail, runtime.ports)
    finally:
        runtime.close()
    assert used == [(True, 14), (True, 14)]  # 10 readings of 06-01 and the file's 4
