"""A new user's first hour with the CLI (issue 15): generated data that does not depend on the
calendar and holds exactly what it says, one-line errors with documented exit codes and no log
line before them, help that loses no words, honest reject ratios, readable tables at 80
columns, and progress on a terminal only."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from healthpipe.bootstrap import LocalRuntime
from healthpipe.cli import app
from healthpipe.commands.live import RunDisplay, rows_written
from healthpipe.orchestration.runs import run_files
from healthpipe.synthetic import SyntheticSpec, generate_csv

HEADER = "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
GOOD = "2025-09-17T12:00:00Z,u1,70,98,100,36.8,120,80\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_one_error_line(result: Result, code: int = 2) -> str:
    """Exit `code`, exactly one line on stderr, and no JSON log line anywhere."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert '"level"' not in result.stderr and '"level"' not in result.stdout
    assert "Traceback" not in result.output
    return lines[0]


# ------------------------------------------------------------------ generated data


@pytest.mark.parametrize("rows", [1, 999, 1000, 5000])
def test_generate_writes_exactly_the_rows_asked_for(tmp_path: Path, rows: int) -> None:
    out = tmp_path / "g.csv"
    result = invoke("generate", "--rows", str(rows), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(read_rows(out)) == rows


@pytest.mark.clock
def test_generate_ends_now_so_that_no_reading_is_in_the_future(tmp_path: Path) -> None:
    out = tmp_path / "g.csv"
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    assert invoke("generate", "--rows", "3000", "--out", str(out)).exit_code == 0
    times = [
        datetime.fromisoformat(r["event_time"].replace("Z", "+00:00"))
        for r in read_rows(out)
        if r["event_time"] != "not-a-time"
    ]
    assert max(times) <= datetime.now(UTC)
    assert max(times) >= before - timedelta(minutes=1)


@pytest.mark.clock
def test_generate_end_places_the_last_reading(tmp_path: Path) -> None:
    out = tmp_path / "g.csv"
    result = invoke("generate", "--rows", "200", "--users", "4", "--end", "2031-06-01T10:00:00")
    assert result.exit_code == 2  # --out is required
    result = invoke(
        "generate",
        "--rows",
        "200",
        "--users",
        "4",
        "--end",
        "2031-06-01T10:00:00",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert rows[-1]["event_time"] == "2031-06-01T10:00:00Z"
    assert rows[0]["event_time"] == "2031-06-01T09:10:57Z"  # 49 minutes and 3 users earlier


def test_generate_with_bad_rate_zero_is_clean_and_has_no_repeats(tmp_path: Path) -> None:
    out = tmp_path / "g.csv"
    args = ("generate", "--rows", "20000", "--users", "20", "--bad-rate", "0", "--out", str(out))
    assert invoke(*args).exit_code == 0
    rows = read_rows(out)
    assert len(rows) == 20000
    assert len({(r["user_id"], r["event_time"]) for r in rows}) == 20000
    assert all(re.fullmatch(r"user_\d{3}", r["user_id"]) for r in rows)
    assert all(re.fullmatch(r"\d+", r["heart_rate"]) for r in rows)


def test_the_user_count_is_what_generate_says(tmp_path: Path) -> None:
    # GIVEN the default bad rate (formula cells are injected on purpose)
    out = generate_csv(SyntheticSpec(rows=5000, users=20, seed=7), tmp_path / "g.csv")
    # THEN no injected value poses as a participant: 20 distinct non-empty user ids
    ids = {r["user_id"] for r in read_rows(out) if r["user_id"]}
    assert len(ids) == 20, sorted(ids - {f"user_{i:03d}" for i in range(20)})


@pytest.mark.clock
def test_a_generated_file_passes_the_default_rules_but_for_its_bad_rows(tmp_path: Path) -> None:
    out = tmp_path / "g.csv"
    assert invoke("generate", "--rows", "4000", "--out", str(out)).exit_code == 0
    result = invoke("run", str(out), "--json", "-w", str(tmp_path / "ws"))
    (item,) = json.loads(result.stdout)["files"]
    assert item["rows"]["input"] == 4000
    assert item["rows"]["rejected"] / item["rows"]["input"] < 0.05


def test_generate_refuses_a_suffix_that_run_refuses(tmp_path: Path) -> None:
    line = assert_one_error_line(
        invoke("generate", "--rows", "10", "--out", str(tmp_path / "g.txt"))
    )
    assert ".csv or .csv.gz" in line
    assert not (tmp_path / "g.txt").exists()


def test_generate_into_an_unwritable_place_is_a_one_line_error_exit_2() -> None:
    line = assert_one_error_line(invoke("generate", "--rows", "10", "--out", "/proc/nope.csv"))
    assert "cannot write /proc/nope.csv" in line and "internal error" not in line


# ------------------------------------------------------------------ errors


UNUSABLE = {
    "empty.csv": b"",
    "header-only.csv": HEADER.encode(),
    "binary.csv": bytes(range(256)) * 4,
    "semicolons.csv": HEADER.replace(",", ";").encode() + GOOD.replace(",", ";").encode(),
    "missing-column.csv": b"event_time,user_id,heart_rate\n2025-09-17T12:00:00Z,u1,70\n",
    "latin1.csv": (HEADER + "2025-09-17T12:00:00Z,Jos\xe9,70,98,100,36.8,120,80\n").encode(
        "latin-1"
    ),
    "corrupt.csv.gz": b"\x1f\x8b\x08\x00garbage",
}


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_an_unusable_file_is_one_line_on_stderr_and_exit_2(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(UNUSABLE[name])
    line = assert_one_error_line(invoke("run", str(path), "-w", str(tmp_path / "ws")))
    assert line.startswith(f"{name}:")


def test_a_directory_is_named_as_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "exports.csv"
    folder.mkdir()
    line = assert_one_error_line(invoke("run", str(folder), "-w", str(tmp_path / "ws")))
    assert "is a directory" in line and "no such file" not in line


def test_a_missing_rules_file_is_not_an_unknown_profile(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text(HEADER + GOOD)
    result = invoke("run", "v.csv", "--rules", "mine.toml", "-w", str(tmp_path / "ws"))
    line = assert_one_error_line(result)
    assert "rules file not found: mine.toml" in line


def test_a_partial_rules_file_gets_a_readable_message(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text(HEADER + GOOD)
    (tmp_path / "partial.toml").write_text(
        "[ranges]\nheart_rate = { min = 20, max = 300 }\nspo2 = { min = 50, max = 100 }\n"
    )
    result = invoke("run", "v.csv", "--rules", "partial.toml", "-w", str(tmp_path / "ws"))
    line = assert_one_error_line(result)
    assert "ranges missing for" in line
    assert "Value error" not in line and ": :" not in line


@pytest.mark.parametrize(
    "args",
    [("run", "--bogus", "x.csv"), ("run",), ("status", "--limit", "x"), ("nosuchcommand",)],
)
def test_a_bad_flag_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    line = assert_one_error_line(invoke(*args))
    assert line.startswith("error:")


def test_retry_of_an_unknown_id_does_not_report_success(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (tmp_path / "v.csv").write_text(HEADER + GOOD)
    assert invoke("run", "v.csv", "-w", str(workspace)).exit_code == 0
    line = assert_one_error_line(invoke("retry", "--id", "999", "-w", str(workspace)))
    assert "no dead letter with id 999" in line


@pytest.mark.parametrize("command", ["retry", "digest", "status"])
def test_commands_that_read_a_workspace_do_not_create_one(tmp_path: Path, command: str) -> None:
    workspace = tmp_path / "nothing-here"
    line = assert_one_error_line(invoke(command, "-w", str(workspace)))
    assert "no workspace" in line
    assert not workspace.exists()


@pytest.mark.clock
def test_digest_of_an_empty_window_mails_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (tmp_path / "empty.csv").write_bytes(b"")
    invoke("run", "empty.csv", "-w", str(workspace))  # a workspace with no analysed dataset
    before = set((workspace / "outbox").glob("*.eml"))
    result = invoke("digest", "-w", str(workspace), "--since", "1h")
    assert result.exit_code == 0, result.output
    assert "no digest sent" in result.stdout
    assert set((workspace / "outbox").glob("*.eml")) == before


def test_logs_reach_stderr_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    quiet = invoke("run", "empty.csv", "-w", str(tmp_path / "a"))
    assert "pipeline failure" not in quiet.stderr
    readable = invoke("run", "empty.csv", "-w", str(tmp_path / "b"), "-v")
    assert "WARNING healthpipe.dispatch: pipeline failure" in readable.stderr
    as_json = invoke("run", "empty.csv", "-w", str(tmp_path / "c"), "--log-json")
    logged = [json.loads(line) for line in as_json.stderr.splitlines() if line.startswith("{")]
    assert any(entry["message"] == "pipeline failure" for entry in logged)


def test_upload_without_credentials_is_a_settings_problem_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("boto3")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    (tmp_path / "v.csv").write_text(HEADER + GOOD)
    line = assert_one_error_line(invoke("upload", "v.csv", "--bucket", "some-bucket"))
    assert "credentials" in line.lower()


# ------------------------------------------------------------------ help


def _commands() -> list[str]:
    import typer.main

    from healthpipe.cli import app

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


# every command the CLI registers, so that a new command is held to the same help rules
COMMANDS = _commands()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_env_and_default_and_loses_no_words(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    text = result.stdout
    assert "<bool>" not in text and "{" not in text
    options = help_entries(text)
    assert options
    for entry in options:
        assert "default" in entry or "[required]" in entry, entry


def help_entries(text: str) -> list[str]:
    """Each option's help, its wrapped lines joined."""
    entries: list[str] = []
    options = text.split("Options:", 1)[-1]  # not the description above it
    for line in options.splitlines():
        if re.match(r"\s+(-\w, )?--", line):
            entries.append(line.strip())
        elif entries and line.startswith("      ") and line.strip():
            entries[-1] += " " + line.strip()
    return [e for e in entries if not e.startswith("--help")]


PYTHON_TYPE = re.compile(r"<[^>]*>|list\[|Path\]|\bstr\b|\bint\b|\bfloat\b")


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_and_names_read_as_words_not_python_types(command: str) -> None:
    """`FILE...`, `--since DURATION`: never `FILE... <list[Path]>` or `--settle <float range>`
    (Typer appends a parameter's Python type unless the project names it)."""
    import typer.main

    group = typer.main.get_command(app)
    cli = group.commands[command]  # type: ignore[attr-defined]
    with cli.context_class(cli, info_name=command) as ctx:
        names = [record[0] for p in cli.get_params(ctx) if (record := p.get_help_record(ctx))]
    assert names
    for name in names:
        assert not PYTHON_TYPE.search(name), name
    usage = invoke(command, "--help").stdout.splitlines()[0]
    assert usage.startswith(f"Usage: healthpipe {command} [OPTIONS]"), usage
    assert not PYTHON_TYPE.search(usage) and "{" not in usage, usage


def test_help_keeps_the_bracketed_env_text() -> None:
    text = " ".join(invoke("run", "--help").stdout.split())
    assert "[env HEALTHPIPE_WORKSPACE; default ./healthpipe-data]" in text
    assert "Usage: healthpipe run [OPTIONS] FILE..." in text


# ------------------------------------------------------------------ counts and status


def write_with_rejects(path: Path, good: int, bad: int) -> Path:
    start = datetime(2025, 9, 17, tzinfo=UTC)
    lines = [HEADER]
    for i in range(good + bad):
        hr = "70" if i < good else "abc"
        stamp = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},u{i % 3},{hr},98,100,36.8,120,80\n")
    path.write_text("".join(lines))
    return path


def test_status_shows_the_overall_reject_ratio_not_a_sum_of_ratios(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    small = write_with_rejects(tmp_path / "small.csv", good=9, bad=1)  # 0.100
    big = write_with_rejects(tmp_path / "big.csv", good=990, bad=10)  # 0.010
    assert invoke("run", str(small), str(big), "-w", str(workspace)).exit_code == 0
    result = invoke("status", "-w", str(workspace), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "reject ratio: 0.011 overall (11 rejected of 1,010 rows in 2 dataset(s))" in (
        result.stdout
    )
    assert "0.100" in result.stdout and "0.010" in result.stdout  # per file
    assert "0.110" not in result.stdout  # the sum of the two ratios
    assert "RejectRatio" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    doc = json.loads(invoke("status", "-w", str(workspace), "--json").stdout)
    assert doc["reject_ratio"]["ratio"] == pytest.approx(11 / 1010)


def test_run_table_fits_80_columns_and_wide_shows_full_dataset_ids(tmp_path: Path) -> None:
    path = write_with_rejects(tmp_path / "a-rather-long-export-name-from-the-device.csv", 5, 1)
    result = invoke("run", str(path), "-w", str(tmp_path / "ws"), env={"COLUMNS": "80"})
    table = result.stdout.split("report:")[0]  # the paths after it are printed whole
    assert max(len(line) for line in table.splitlines()) <= 80, result.stdout
    assert "…" not in table
    wide = invoke("run", str(path), "-w", str(tmp_path / "ws"), "--wide", "--json")
    dataset_id = json.loads(wide.stdout)["files"][0]["dataset_id"]
    shown = invoke("run", str(path), "-w", str(tmp_path / "ws"), "--wide", env={"COLUMNS": "80"})
    assert dataset_id in shown.stdout


def test_a_rerun_under_other_rules_says_which_rules_were_applied(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    path = write_with_rejects(tmp_path / "v.csv", 5, 1)
    assert invoke("run", str(path), "-w", str(workspace)).exit_code == 0
    again = invoke("run", str(path), "-w", str(workspace), "--rules", "seed", "--json")
    (item,) = json.loads(again.stdout)["files"]
    assert item["status"] == "skipped"
    assert item["note"] == "skipped: same content already processed with rules plausible"
    shown = invoke("run", str(path), "-w", str(workspace), "--rules", "seed")
    assert "same content already processed with rules plausible" in shown.stdout


# ------------------------------------------------------------------ progress


def test_progress_on_a_terminal_shows_stages_rows_and_a_summary(
    tmp_path: Path, runtime: LocalRuntime
) -> None:
    source = generate_csv(SyntheticSpec(rows=20000, users=10, seed=3), tmp_path / "p.csv")
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    seen: list[str] = []
    with RunDisplay(console, 1) as display:
        display.listener.on_step = lambda stage: (seen.append(stage), display.step(stage))[-1]
        (outcome,) = run_files(runtime, [source], on_file=display.done, on_start=display.start)
    assert outcome.status == "processed"
    assert [s for s in seen if s != "start"] == ["hash", "validate", "analyze", "report", "send"]
    text = screen.getvalue()
    assert "p.csv: processed, 20,000 rows in" in text  # the summary line stays


def test_generate_progress_counts_rows_on_a_terminal(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with rows_written(console, 10):
        generate_csv(SyntheticSpec(rows=10), tmp_path / "g.csv")
    assert len(read_rows(tmp_path / "g.csv")) == 10


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    path = write_with_rejects(tmp_path / "v.csv", 5, 1)
    result = invoke("run", str(path), "-w", str(tmp_path / "ws"), "--json")
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1
