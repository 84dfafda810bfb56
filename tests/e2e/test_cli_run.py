"""`healthpipe run` end to end through the CLI: the `--json` contract, idempotency (a second
run and the same bytes under another name are skipped, no second email), `--rules seed`, exit
codes, and one real subprocess run of the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app

FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "source": str,
    "dataset_id": (str, type(None)),
    "status": str,
    "rows": dict,
    "anomalies": int,
    "report": (str, type(None)),
    "email": (str, type(None)),
    "error": (str, type(None)),
    "note": (str, type(None)),
    "assessment": (str, type(None)),
}
STATUSES = {"processed", "skipped", "rejected", "failed"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def run_json(
    workspace: Path, *files: Path | str, extra: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any]]:
    result = invoke("run", *map(str, files), "--json", "--workspace", str(workspace), *extra)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    return result.exit_code, parse_single_json(result.stdout)


def parse_single_json(stdout: str) -> dict[str, Any]:
    """stdout is exactly one JSON object (one line), with the documented keys and types."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    doc = json.loads(lines[0])
    assert isinstance(doc, dict) and set(doc) == {"files"}
    for item in doc["files"]:
        assert set(item) == set(FILE_KEYS), item
        for key, kind in FILE_KEYS.items():
            assert isinstance(item[key], kind), (key, item[key])
        assert item["status"] in STATUSES
        assert set(item["rows"]) == {"input", "valid", "rejected"}
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in item["rows"].values())
    return doc


def emails(workspace: Path) -> list[Path]:
    return sorted((workspace / "outbox").glob("*.eml"))


def test_run_seed_sample_then_again_then_renamed(seed_dir: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    sample = seed_dir / "sample_data.csv"

    code, doc = run_json(workspace, sample)
    assert code == 0
    (first,) = doc["files"]
    assert first["status"] == "processed"
    assert first["error"] is None
    assert first["rows"]["input"] == 1000
    assert first["rows"]["input"] == first["rows"]["valid"] + first["rows"]["rejected"]
    assert first["source"] == str(sample)
    assert first["report"] and Path(first["report"]).is_file()
    assert first["report"].endswith(".html")
    assert first["email"] and Path(first["email"]).is_file()
    assert first["email"].endswith(".eml")
    assert Path(first["email"]).parent == workspace / "outbox"
    sent = emails(workspace)
    assert Path(first["email"]) in sent
    assert (workspace / "bucket" / "raw" / "sample_data.csv").read_bytes() == sample.read_bytes()
    manifest = workspace / "bucket" / "manifests" / f"{first['dataset_id']}.json"
    assert json.loads(manifest.read_text())["counts"]["input"] == 1000

    code, doc = run_json(workspace, sample)
    assert code == 0
    (again,) = doc["files"]
    assert again["status"] == "skipped"
    assert again["dataset_id"] == first["dataset_id"]
    assert again["rows"] == first["rows"]
    assert emails(workspace) == sent  # no second email

    renamed = tmp_path / "renamed-copy.csv"
    shutil.copyfile(sample, renamed)
    code, doc = run_json(workspace, renamed)
    assert code == 0
    (copy,) = doc["files"]
    assert copy["status"] == "skipped"
    assert copy["dataset_id"] == first["dataset_id"]
    assert emails(workspace) == sent


def test_run_with_seed_rules(seed_dir: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    source = seed_dir / "synthetic_health_data.csv"
    code, doc = run_json(workspace, source, extra=("--rules", "seed"))
    assert code == 0
    (item,) = doc["files"]
    assert item["status"] == "processed"
    assert item["rows"]["input"] == 1000 == item["rows"]["valid"] + item["rows"]["rejected"]
    manifest = json.loads(
        (workspace / "bucket" / "manifests" / f"{item['dataset_id']}.json").read_text()
    )
    assert manifest["rules_profile"] == "seed"
    assert sum(manifest["counts"]["by_reason"].values()) >= item["rows"]["rejected"]


def test_several_files_in_one_run_exit_2_when_one_is_unusable(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
        "2025-09-17T12:00:00Z,u1,70,98,100,36.8,120,80\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    code, doc = run_json(tmp_path / "ws", good, bad, tmp_path / "absent.csv")
    assert code == 2
    statuses = [(Path(f["source"]).name, f["status"]) for f in doc["files"]]
    assert statuses == [("good.csv", "processed"), ("bad.csv", "rejected"),
                        ("absent.csv", "rejected")]  # fmt: skip
    for item in doc["files"][1:]:
        assert item["error"] and "\n" not in item["error"]
        assert item["report"] is None and item["email"] is None


def test_a_file_that_is_not_csv_by_name_is_rejected(tmp_path: Path) -> None:
    other = tmp_path / "vitals.xlsx"
    other.write_bytes(b"PK\x03\x04 not a csv")
    code, doc = run_json(tmp_path / "ws", other)
    assert code == 2
    (item,) = doc["files"]
    assert item["status"] == "rejected" and ".csv" in item["error"]


def test_run_without_json_prints_a_table_and_the_report_path(tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text(
        "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
        "2025-09-17T12:00:00Z,u1,70,98,100,36.8,120,80\n"
        "2025-09-17T12:01:00Z,u1,999,98,100,36.8,120,80\n",
        encoding="utf-8",
    )
    result = invoke("run", str(source), "--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    assert "processed" in result.stdout
    assert "report:" in result.stdout and ".html" in result.stdout


def test_run_with_an_unknown_rules_profile_exits_2_with_one_line(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("event_time\n", encoding="utf-8")
    result = invoke("run", str(source), "--rules", "strictest", "--workspace", str(tmp_path / "w"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "strictest" in lines[0]
    assert result.stdout.strip() == ""


def test_run_with_a_broken_rules_file_exits_2_with_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "mine.toml"
    rules.write_text("[ranges]\nheart_rate = { min = 300, max = 20 }\n", encoding="utf-8")
    source = tmp_path / "x.csv"
    source.write_text("event_time\n", encoding="utf-8")
    result = invoke("run", str(source), "--rules", str(rules), "--workspace", str(tmp_path / "w"))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "mine.toml" in lines[0]
    assert "Traceback" not in result.output


def test_run_with_a_users_own_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "tight.toml"
    rules.write_text(
        'name = "tight"\n[ranges]\n'
        "heart_rate = { min = 60, max = 80 }\nspo2 = { min = 95, max = 100 }\n"
        "steps = { min = 0, max = 10 }\ntemp_c = { min = 36, max = 37.5 }\n"
        "systolic_bp = { min = 100, max = 130 }\ndiastolic_bp = { min = 60, max = 85 }\n",
        encoding="utf-8",
    )
    source = tmp_path / "x.csv"
    source.write_text(
        "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
        "2025-09-17T12:00:00Z,u1,70,98,5,36.8,120,80\n"
        "2025-09-17T12:01:00Z,u1,81,98,5,36.8,120,80\n"
        "2025-09-17T12:02:00Z,u1,70,98,11,36.8,120,80\n",
        encoding="utf-8",
    )
    code, doc = run_json(tmp_path / "ws", source, extra=("--rules", str(rules)))
    assert code == 0
    (item,) = doc["files"]
    assert item["rows"] == {"input": 3, "valid": 1, "rejected": 2}
    manifest = json.loads(
        (tmp_path / "ws" / "bucket" / "manifests" / f"{item['dataset_id']}.json").read_text()
    )
    assert manifest["rules_profile"] == "tight"
    assert manifest["counts"]["by_reason"] == {"invalid_heart_rate": 1, "invalid_steps": 1}


def console_script() -> Path:
    script = Path(sys.executable).parent / "healthpipe"
    if not script.is_file():
        pytest.skip("the healthpipe console script is not installed next to this Python")
    return script


def test_installed_console_script_runs_the_pipeline(seed_dir: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    proc = subprocess.run(
        [
            str(console_script()),
            "run",
            str(seed_dir / "sample_data.csv"),
            "--json",
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (item,) = parse_single_json(proc.stdout)["files"]
    assert item["status"] == "processed"
    assert item["rows"]["input"] == 1000 == item["rows"]["valid"] + item["rows"]["rejected"]
    assert Path(item["report"]).is_file() and Path(item["email"]).is_file()


def test_installed_console_script_bad_input_exit_2_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,heart_rate\nu1,70\n", encoding="utf-8")
    proc = subprocess.run(
        [str(console_script()), "run", str(bad), "--json", "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    (item,) = parse_single_json(proc.stdout)["files"]
    assert item["status"] == "rejected"
    assert "missing required column" in item["error"]


def test_an_internal_failure_is_status_failed_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import healthpipe.stages.analyze as analyze_stage

    def broken(*_args: object, **_kwargs: object) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(analyze_stage, "analyze_parquet", broken)
    monkeypatch.setenv("HEALTHPIPE_RETRY_BASE_SECONDS", "0")
    source = tmp_path / "v.csv"
    source.write_text(
        "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
        "2025-09-17T12:00:00Z,u1,70,98,100,36.8,120,80\n",
        encoding="utf-8",
    )
    workspace = tmp_path / "ws"
    code, doc = run_json(workspace, source)
    assert code == 1
    (item,) = doc["files"]
    assert item["status"] == "failed"
    assert item["error"] and "disk on fire" in item["error"]
    assert item["email"] is None
    assert not list((workspace / "outbox").glob("*.eml"))

    status = invoke("status", "--workspace", str(workspace), "--json")
    dead = json.loads(status.stdout)["dead_letters"]
    assert len(dead) == 1 and "disk on fire" in dead[0]["last_error"]


def test_an_unusable_file_stays_rejected_when_run_again(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,heart_rate\nu1,70\n", encoding="utf-8")
    workspace = tmp_path / "ws"
    for _ in range(2):
        code, doc = run_json(workspace, bad)
        assert code == 2
        (item,) = doc["files"]
        assert item["status"] == "rejected" and "missing required column" in item["error"]
    renamed = tmp_path / "bad-again.csv"
    shutil.copyfile(bad, renamed)
    code, doc = run_json(workspace, renamed)
    assert code == 2 and doc["files"][0]["status"] == "rejected"


def test_seed_sample_outputs_on_disk_hold_every_row(seed_dir: Path, tmp_path: Path) -> None:
    import csv

    workspace = tmp_path / "ws"
    code, doc = run_json(workspace, seed_dir / "sample_data.csv")
    assert code == 0
    (item,) = doc["files"]
    manifest = json.loads(
        (workspace / "bucket" / "manifests" / f"{item['dataset_id']}.json").read_text()
    )
    counted = {}
    for output in ("processed_csv", "rejected_csv"):
        key = manifest["outputs"][output]
        if key is None:
            counted[output] = 0
            continue
        with (workspace / "bucket" / key).open(newline="", encoding="utf-8") as handle:
            counted[output] = sum(1 for _ in csv.DictReader(handle))
    assert counted["processed_csv"] == item["rows"]["valid"]
    assert counted["rejected_csv"] == item["rows"]["rejected"]
    assert sum(counted.values()) == 1000
    assert sum(manifest["counts"]["by_reason"].values()) >= item["rows"]["rejected"]
