"""`healthpipe status`, `generate` and `demo` through the CLI."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app
from healthpipe.constants import REQUIRED_COLUMNS


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def generate(out: Path, rows: int) -> None:
    result = invoke(
        "generate", "--rows", str(rows), "--users", "3", "--seed", "3", "--out", f"{out}"
    )
    assert result.exit_code == 0, result.output


@pytest.mark.clock
def test_generate_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    for out, seed in ((a, "5"), (b, "5"), (c, "6")):
        result = invoke(
            "generate",
            "--rows",
            "300",
            "--users",
            "4",
            "--seed",
            seed,
            "--out",
            f"{out}",
            "--end",
            "2030-01-01T00:00:00",
        )
        assert result.exit_code == 0, result.output
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    with a.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(n.strip().lower() for n in reader.fieldnames or []) == REQUIRED_COLUMNS
        rows = list(reader)
    assert len(rows) == 300  # exactly --rows, bad rows and repeated readings among them
    assert len({r["user_id"] for r in rows if r["user_id"]}) == 4


def test_generate_gzip_output(tmp_path: Path) -> None:
    out = tmp_path / "v.csv.gz"
    result = invoke("generate", "--rows", "120", "--users", "2", "--seed", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    with gzip.open(out, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0].split(",")[:2] == ["event_time", "user_id"]
    assert len(lines) >= 121


def test_generate_rejects_bad_arguments(tmp_path: Path) -> None:
    result = invoke("generate", "--rows", "0", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 2
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.clock
def test_demo_prints_the_report_path_and_the_files_exist(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    result = invoke("demo", "--workspace", str(workspace), "--rows", "400", "--users", "5")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    match = re.search(r"Report:\s*(\S+\.html)", result.stdout)
    assert match, result.stdout
    report = Path(match.group(1))
    assert report.is_file()
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert list((workspace / "outbox").glob("*.eml"))
    assert list((workspace / "bucket" / "manifests").glob("*.json"))
    assert (workspace / "healthpipe.db").is_file()
    # the report path is the last thing printed
    assert result.stdout.rstrip().endswith(match.group(1))


@pytest.mark.clock
def test_status_lists_datasets_after_a_run(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    sample = tmp_path / "s.csv"
    generate(sample, rows=200)
    run = invoke("run", str(sample), "--json", "--workspace", str(workspace))
    assert run.exit_code == 0, run.output
    (item,) = json.loads(run.stdout)["files"]

    status = invoke("status", "--workspace", str(workspace), "--json")
    assert status.exit_code == 0, status.output
    doc = json.loads(status.stdout)
    assert set(doc) >= {"datasets", "dead_letters", "deliveries", "metrics"}
    (dataset,) = doc["datasets"]
    assert dataset["dataset_id"] == item["dataset_id"]
    assert dataset["rows"]["input"] == item["rows"]["input"] >= 200
    assert doc["dead_letters"] == []

    text = invoke("status", "--workspace", str(workspace))
    assert text.exit_code == 0, text.output
    assert "Recent datasets" in text.stdout
    assert "dead letters: 0" in text.stdout


def test_status_of_a_missing_workspace_exits_2_with_one_line(tmp_path: Path) -> None:
    result = invoke("status", "--workspace", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nowhere" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "nowhere").exists()


def test_workspace_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = tmp_path / "env-ws"
    monkeypatch.setenv("HEALTHPIPE_WORKSPACE", str(workspace))
    sample = tmp_path / "s.csv"
    generate(sample, rows=150)
    result = invoke("run", str(sample), "--json")
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    assert Path(item["report"]).is_relative_to(workspace)
    assert (workspace / "healthpipe.db").is_file()


def test_default_workspace_is_healthpipe_data_in_the_cwd(tmp_path: Path) -> None:
    # conftest chdirs into tmp_path
    sample = tmp_path / "s.csv"
    generate(sample, rows=150)
    result = invoke("run", str(sample), "--json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "healthpipe-data" / "healthpipe.db").is_file()
    for folder in ("raw", "processed", "manifests", "analyzed", "reports"):
        assert (tmp_path / "healthpipe-data" / "bucket" / folder).is_dir(), folder


def test_version_and_help() -> None:
    version = invoke("--version")
    assert version.exit_code == 0 and version.stdout.startswith("healthpipe ")
    helptext = invoke("--help")
    assert helptext.exit_code == 0
    for command in ("run", "demo", "generate", "status"):
        assert command in helptext.stdout
