"""The harness's own plumbing (benchmarks/run.py, measure.py), on small inputs: which peers a
size skips and why, what a large input's round leaves on disk, how a failed or timed-out task
is recorded, and the environment that gives measured processes their bytecode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import measure
import pytest
import run


def _args(tasks: tuple[str, ...]) -> argparse.Namespace:
    return argparse.Namespace(
        tasks=tasks, baseline_max=run.parse_size("2m"), polars_max=run.parse_size("10m")
    )


def test_peers_that_hold_the_file_in_memory_are_skipped_above_their_size_with_a_reason() -> None:
    asked = ("outputs_floor", "original", "polars", "pipeline", "run")
    at_50m = run.in_memory_skips(run.parse_size("50m"), _args(asked))
    assert set(at_50m) == {"original", "polars"}
    assert "--polars-max" in at_50m["polars"]["skipped"]
    assert "up to 2m rows" in at_50m["original"]["skipped"]
    # polars still runs at 10M; the original does not; nothing is skipped that was not asked.
    assert set(run.in_memory_skips(run.parse_size("10m"), _args(asked))) == {"original"}
    assert run.in_memory_skips(run.parse_size("2m"), _args(asked)) == {}
    assert run.in_memory_skips(run.parse_size("50m"), _args(("pipeline",))) == {}
    assert run.label(run.parse_size("50m")) == "50m"


def test_a_large_inputs_round_leaves_only_the_input(tmp_path: Path) -> None:
    source = tmp_path / "vitals.csv"
    source.write_text("event_time,user_id\n")
    (tmp_path / "ws" / "bucket" / "processed").mkdir(parents=True)
    (tmp_path / "ws" / "bucket" / "processed" / "part.parquet").write_bytes(b"x")
    (tmp_path / "outputs_floor.csv").write_text("x")
    (tmp_path / "ingested.json").write_text("{}")
    run.clean(tmp_path, keep=source)
    assert list(tmp_path.iterdir()) == [source]


def test_a_failed_task_is_recorded_and_the_harness_goes_on() -> None:
    def failing() -> measure.Measurement:
        measure.run_process([sys.executable, "-c", "raise SystemExit(3)"], timeout=60)
        raise AssertionError("not reached")

    failed = run.attempt("analyze", failing)
    assert "failed (3)" in failed.info["failed"]
    with pytest.raises(measure.TaskFailed, match="timed out"):
        measure.run_process([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.0)


def test_a_measured_process_reports_its_cpu_seconds() -> None:
    done = measure.run_process([sys.executable, "-c", "sum(range(3_000_000))"], timeout=60)
    assert done.cpu_seconds > 0 and done.peak_rss_mb > 1


def test_children_get_bytecode_when_the_environment_forbids_writing_it(tmp_path: Path) -> None:
    env = measure.bytecode_env(tmp_path, {"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/bin"})
    assert env == {"PATH": "/bin", "PYTHONPYCACHEPREFIX": str(tmp_path)}
    assert measure.bytecode_env(tmp_path, {"PATH": "/bin"}) is None


def test_the_table_says_which_tasks_failed_or_were_skipped() -> None:
    from targets import evaluate, format_table

    ratios: tuple[str, ...] = ("polars_over_ingest", "ingest_over_outputs_floor")
    ratios += ("analyze_over_ingest", "original_over_run")
    sizes = {
        "50m": {
            "bytes": 2_593_455_707,
            "ingest": {"failed": "Out of Memory Error"},
            "polars": {"skipped": "holds the whole file in memory"},
            "ratios": dict.fromkeys(ratios),
        }
    }
    machine = {"cpus": 2, "duckdb": "2.0.1", "load_average": [1.0]}
    table = format_table({"sizes": sizes, "machine": machine, "targets": evaluate(sizes)})
    row = next(line for line in table.splitlines() if line.startswith("50m"))
    assert "failed" in row and "skipped" in row
    assert " 0 " not in row  # no rate for an ingest that did not finish


def test_the_uniform_generator_spills_beside_its_file_not_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 50M rows its ordered write spills; DuckDB's default folder is `.tmp` in the working
    # directory, which is the checkout when the harness runs.
    import uniform

    configs: list[dict[str, object]] = []
    connect = uniform.duckdb.connect

    def recording(*args: object, config: dict[str, object]) -> object:
        configs.append(config)
        return connect(*args, config=config)

    monkeypatch.setattr(uniform.duckdb, "connect", recording)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = uniform.generate_uniform(200, 3, 7, tmp_path / "out" / "uniform.csv")
    spill = Path(str(configs[0]["temp_directory"]))
    assert spill.parent == out.parent and not spill.exists()
    assert list(out.parent.iterdir()) == [out] and not any((tmp_path / "cwd").iterdir())
