"""Shared helpers of the reliability tests: inputs, subprocess runs and workspace invariants."""

from __future__ import annotations

import csv
import functools
import json
import multiprocessing
import multiprocessing.context
import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from healthpipe.synthetic import SyntheticSpec, generate_csv

HERE = Path(__file__).resolve().parent
CRASH_ENTRY = HERE / "rel_crash_entry.py"
SUBPROCESS_TIMEOUT = 120


# A fixed last reading: the same rows and seed give the same file in every test, so a worker
# draws its report charts once (charts.report_charts keeps the charts of equal numbers).
INPUT_END = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def make_input(path: Path, rows: int = 400, seed: int = 11) -> Path:
    """Synthetic vitals with bad rows and duplicates, so both outputs get rows."""
    spec = SyntheticSpec(rows=rows, users=12, seed=seed, bad_row_rate=0.05, end=INPUT_END)
    generate_csv(spec, path)
    return path


def input_records(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def subprocess_env(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHPIPE_")}
    env["HEALTHPIPE_RETRY_BASE_SECONDS"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# What a `healthpipe run` imports (about 1.5 CPU-s in a fresh interpreter, 2.4 with the
# charts' matplotlib): the process server below imports it once, and each run is forked
# from it, its own process with nothing of the test's or of an earlier run.
PRELOAD = [
    "rel_crash_entry",
    "healthpipe.cli",
    "healthpipe.bootstrap",
    "healthpipe.orchestration.runs",
    "healthpipe.stages.ingest",
    "healthpipe.stages.analyze",
    "healthpipe.stages.notify",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
]


@functools.cache
def _forkserver() -> multiprocessing.context.BaseContext:
    """multiprocessing's fork server, started once per test process (by the first run): a
    process of its own that imports PRELOAD, has no thread and never runs healthpipe; a
    run forked from it starts as a fresh interpreter would once it has imported healthpipe.
    Stopped and waited for when the test process exits (not left behind; and its runs' CPU
    is counted in this process's children, as the subprocesses' was)."""
    import atexit
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    atexit.register(forkserver._forkserver._stop)
    return context


def _cli_process(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the forked process: the environment, cwd, stdout and stderr `subprocess.run` gave
    the entry script (unbuffered, as PYTHONUNBUFFERED), then its `main` with `argv`; the
    interpreter's exit functions run at the end as at a normal exit (SIGKILL skips them)."""
    import atexit
    import io

    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # TMPDIR as `env` says
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (as stdin=DEVNULL would)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
    import rel_crash_entry

    sys.argv = [str(CRASH_ENTRY), *argv]
    try:
        rel_crash_entry.main()
    finally:
        atexit._run_exitfuncs()


def run_cli(
    args: list[str], workspace: Path, *, crash: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`healthpipe ARGS` in a process of its own, through the SIGKILL entry script (with
    `crash`, its crash point), as `python rel_crash_entry.py [crash] -- ARGS` would run it,
    forked from the fork server (`_forkserver`) instead of importing everything anew: its
    exit code (-SIGKILL when killed), stdout and stderr."""
    argv = [*(crash or []), "--", *args]
    with tempfile.TemporaryDirectory(prefix="rel-cli-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = _forkserver().Process(  # type: ignore[attr-defined]
            target=_cli_process,
            args=(argv, subprocess_env(workspace), str(workspace.parent), str(out), str(err)),
        )
        process.start()
        process.join(SUBPROCESS_TIMEOUT)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired([str(CRASH_ENTRY), *argv], SUBPROCESS_TIMEOUT)
        return subprocess.CompletedProcess(
            [sys.executable, str(CRASH_ENTRY), *argv],
            process.exitcode,
            out.read_text(encoding="utf-8") if out.exists() else "",
            err.read_text(encoding="utf-8") if err.exists() else "",
        )


def run_in_process(args: list[str], workspace: Path) -> subprocess.CompletedProcess[str]:
    """`healthpipe ARGS` in this process: the runs after a crash (no kill needed), sparing
    the ~1.5 s of imports a fresh interpreter pays. Nothing carries over from the crashed
    process but the workspace, and this process's pid is another live owner."""
    from typer.testing import CliRunner

    from healthpipe.cli import app

    result = CliRunner().invoke(app, args, env={"HEALTHPIPE_RETRY_BASE_SECONDS": "0"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def json_files(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.stdout.strip(), f"no stdout; stderr: {proc.stderr[-2000:]}"
    files: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])["files"]
    return files


def db_rows(workspace: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(workspace / "healthpipe.db", timeout=30)
    try:
        return list(con.execute(sql).fetchall())
    finally:
        con.close()


@dataclass(frozen=True)
class Split:
    processed: list[int]
    rejected: list[int]


def split_of(workspace: Path) -> Split:
    """source_row of every output row (processed Parquet and rejected CSV), duplicates kept."""
    bucket = workspace / "bucket"
    processed: list[int] = []
    for parquet in sorted((bucket / "processed").rglob("*.parquet")):
        con = duckdb.connect()
        try:
            rows = con.execute("SELECT source_row FROM read_parquet(?)", [str(parquet)]).fetchall()
        finally:
            con.close()
        processed += [int(r[0]) for r in rows]
    rejected: list[int] = []
    for path in sorted((bucket / "rejected").rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rejected += [int(r["source_row"]) for r in csv.DictReader(handle)]
    return Split(processed, rejected)


def assert_exactly_once(workspace: Path, source: Path) -> None:
    """Every input row in exactly one output, one analysis, one email, no stuck claim."""
    n = input_records(source)
    split = split_of(workspace)
    assert len(split.processed) == len(set(split.processed)), "a row processed twice"
    assert len(split.rejected) == len(set(split.rejected)), "a row rejected twice"
    assert not set(split.processed) & set(split.rejected), "a row both processed and rejected"
    assert set(split.processed) | set(split.rejected) == set(range(1, n + 1))
    bucket = workspace / "bucket"
    manifests = list((bucket / "manifests").glob("*.json"))
    assert len(manifests) == 1
    counts = json.loads(manifests[0].read_text())["counts"]
    assert counts["input"] == n == counts["valid"] + counts["rejected"]
    assert counts["valid"] == len(split.processed)
    analyses = [p for p in (bucket / "analyzed").glob("*.json")]
    assert len(analyses) == 1
    assert db_rows(workspace, "SELECT count(*) FROM analyses") == [(1,)]
    assert len(report_emails(workspace)) == 1, report_emails(workspace)
    assert len(list((workspace / "outbox").glob("alert-*.eml"))) <= 1
    assert_no_stuck_work(workspace)
    assert (bucket / "raw" / source.name).is_file(), "the raw file was deleted"


def report_emails(workspace: Path) -> list[Path]:
    """The report emails in the outbox (an alert email may go too, also at most once)."""
    return sorted((workspace / "outbox").glob("report-*.eml"))


def assert_no_stuck_work(workspace: Path) -> None:
    stuck = db_rows(workspace, "SELECT key, owner FROM ledger WHERE status = 'in_progress'")
    assert stuck == [], f"claims left in progress: {stuck}"
    open_deliveries = db_rows(
        workspace,
        "SELECT id, target, status, last_error FROM deliveries WHERE status <> 'delivered'",
    )
    assert open_deliveries == [], open_deliveries


def notify_done_count(workspace: Path) -> int:
    rows = db_rows(
        workspace,
        "SELECT count(*) FROM deliveries WHERE target = 'notify' AND outcome = 'done'",
    )
    return int(rows[0][0])
