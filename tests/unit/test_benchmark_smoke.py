"""A tiny run of the benchmark harness: it measures every task and reports every target.

No timing assertions: only that the harness runs end to end and writes what it promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "benchmarks" / "run.py"
# One xdist worker takes the whole module (`--dist loadgroup`): its fixture runs once.
pytestmark = pytest.mark.xdist_group("benchmark_smoke")
TASKS = ("floor", "outputs_floor", "baseline", "ingest", "analyze", "notify", "run")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:  # type: ignore[type-arg]
    work = tmp_path_factory.mktemp("bench")
    out = work / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--sizes",
            "1k",
            "--repeat",
            "1",
            "--workdir",
            str(work / "files"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_every_task_is_measured_in_its_own_process(smoke_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    results, _ = smoke_run
    size = results["sizes"]["1k"]
    assert size["rows"]["input"] == size["rows"]["valid"] + size["rows"]["rejected"]
    assert size["rows"]["input"] >= 1000 and size["rows"]["rejected"] > 0
    for task in TASKS:
        m = size[task]
        assert m["seconds"] > 0 and m["peak_rss_mb"] > 10, task
        assert m["rows_per_s"] > 0, task
    assert size["ingest"]["outcome"] == "done"
    assert size["analyze"]["outcome"] == "done"
    assert set(size["ratios"]) == {
        "ingest_over_baseline",
        "baseline_over_ingest",
        "ingest_over_floor",
        "outputs_floor_over_floor",
        "ingest_over_outputs_floor",
        "analyze_over_ingest",
        "run_over_ingest",
    }
    assert size["ratios"]["ingest_over_floor"] == pytest.approx(
        size["ingest"]["seconds"] / size["floor"]["seconds"], rel=0.01
    )


def test_every_target_is_reported_with_its_status(smoke_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    results, stdout = smoke_run
    targets = results["targets"]
    assert len(targets) == 6
    # Targets are judged at 2M and 10M rows: a 1k run measures none of them.
    assert {t["status"] for t in targets} == {"NOT MEASURED"}
    for t in targets:
        assert f"[{t['status']}] {t['target']}" in stdout
    assert "1k" in stdout and "ingest rows/s" in stdout


def test_bounds_compare_the_targets_with_the_outputs_floor() -> None:
    from targets import bounds

    sizes = {
        "2m": {"baseline": {"seconds": 12.0}, "outputs_floor": {"seconds": 1.2}},
        "10m": {"floor": {"seconds": 3.0}, "outputs_floor": {"seconds": 6.0}},
    }
    lines = bounds(sizes)
    assert lines[0].startswith("15x at 2M allows ingest 0.8 s")
    assert "takes 1.2 s, more than that" in lines[0]
    assert "allows ingest 4.5 s" in lines[1] and "= 2.0x the floor" in lines[1]
    assert bounds({}) == []


def test_baseline_validates_like_the_original_rules() -> None:
    from baseline_original import validate_row

    good = {
        "event_time": "2026-11-01T00:00:00Z",
        "user_id": "u1",
        "heart_rate": "70",
        "spo2": "98",
        "steps": "10",
        "temp_c": "36.6",
        "systolic_bp": "120",
        "diastolic_bp": "80",
    }
    assert validate_row(good) == []
    assert validate_row({**good, "heart_rate": ""}) == ["missing_heart_rate"]
    assert validate_row({**good, "spo2": "89"}) == ["invalid_spo2"]
    assert validate_row({**good, "diastolic_bp": "121"}) == ["invalid_diastolic_bp", "dbp_gt_sbp"]
    assert validate_row({**good, "temp_c": "abc"}) == ["invalid_temp_c"]
