"""`healthpipe watch`: files are processed as they land in raw/, once settled; a bad file
does not stop the watcher; a restart resumes unfinished work; SIGTERM/Ctrl-C stop cleanly.

Every wait below is bounded (a deadline, then the test fails); nothing asserts a duration.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rel_faults import FaultPlan, build_faulty
from rel_helpers import (
    CRASH_ENTRY,
    assert_exactly_once,
    input_records,
    make_input,
    report_emails,
    run_cli,
    subprocess_env,
)

from healthpipe.bootstrap import LocalRuntime
from healthpipe.config import Settings
from healthpipe.domain.identity import correlation_id_for
from healthpipe.errors import TransientError
from healthpipe.orchestration.runs import FileOutcome
from healthpipe.orchestration.watch import RawWatcher, SettleTracker

DEADLINE = 90.0
LEDGER_COMPLETE = "healthpipe.adapters.local.ledger:SqliteLedger.complete"
BUS_PUBLISH = "healthpipe.adapters.local.event_bus:SqliteEventBus._publish"


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


# --------------------------------------------------------------------------- settling
def test_a_file_is_ready_only_after_its_size_stays_still(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("event_time,user_id\n")
    tracker = SettleTracker(settle_seconds=2.0)
    tracker.touch(path)

    assert tracker.ready(now=100.0) == []  # first look: remember size and mtime
    assert tracker.ready(now=101.0) == []  # still, but not for long enough
    with path.open("a") as handle:  # the writer goes on
        handle.write("2026-11-01T00:00:00Z,u1\n")
    assert tracker.ready(now=102.5) == []  # changed: the clock starts again
    assert tracker.ready(now=104.0) == []
    assert tracker.ready(now=104.6) == [path]
    assert len(tracker) == 0


def test_a_file_deleted_before_it_settles_is_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("x\n")
    tracker = SettleTracker(settle_seconds=0.0)
    tracker.touch(path)
    path.unlink()

    assert tracker.ready(now=1.0) == []
    assert len(tracker) == 0


# --------------------------------------------------------------------------- in process
@pytest.fixture
def watching(runtime: LocalRuntime) -> Iterator[tuple[RawWatcher, list[FileOutcome]]]:
    outcomes: list[FileOutcome] = []
    watcher = RawWatcher(runtime, settle_seconds=1.5, poll_seconds=0.05, on_outcome=outcomes.append)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    yield watcher, outcomes
    watcher.stop()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the watcher did not stop"


def _write_slowly(source: Path, target: Path, chunks: int = 12) -> None:
    data = source.read_bytes()
    step = len(data) // chunks + 1
    with target.open("wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(0.05)


def test_watcher_processes_a_slow_copy_once_whole_and_survives_a_bad_file(
    watching: tuple[RawWatcher, list[FileOutcome]], workspace: Path, tmp_path: Path
) -> None:
    _, outcomes = watching
    source = make_input(tmp_path / "vitals.csv")
    raw = workspace / "bucket" / "raw"
    raw.mkdir(parents=True, exist_ok=True)

    _write_slowly(source, raw / "vitals.csv")
    (raw / "broken.csv").write_bytes(b"\x00\x01garbage\xff")
    wait_for(lambda: len(outcomes) >= 2, "two outcomes")

    by_name = {Path(o.source).name: o for o in outcomes}
    assert by_name["broken.csv"].status == "rejected"
    good = by_name["vitals.csv"]
    assert good.status == "processed"
    assert good.rows["input"] == input_records(source), "a half-written file was processed"
    assert len(outcomes) == 2
    assert len(list((workspace / "bucket" / "processed").rglob("*.parquet"))) == 1
    assert len(report_emails(workspace)) == 1
    assert (raw / "broken.csv").is_file()

    # a later file still goes through: the bad one did not stop the watcher
    shutil.copy(source, raw / "again.csv")
    wait_for(lambda: len(outcomes) >= 3, "the third outcome")
    assert outcomes[2].status == "skipped"  # same bytes under another name
    assert len(report_emails(workspace)) == 1


def test_every_upload_under_raw_leaves_a_record_hidden_and_partial_files_are_not_inputs(
    watching: tuple[RawWatcher, list[FileOutcome]],
    runtime: LocalRuntime,
    workspace: Path,
    tmp_path: Path,
) -> None:
    watcher, outcomes = watching
    raw = workspace / "bucket" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    # GIVEN a hidden file and a copy in progress (not uploads yet), a CSV named in another
    # case, and a file of a kind ingest does not read
    (raw / ".tmp-partial.csv").write_text("event_time\n")
    (raw / "vitals.csv.part").write_text("event_time\n")
    (raw / "notes.txt").write_text("hello")
    shutil.copy(make_input(tmp_path / "vitals.csv"), raw / "export.Csv")

    wait_for(lambda: len(outcomes) >= 2, "two outcomes")
    watcher.stop()
    # THEN the CSV is processed, whatever the case of its suffix
    by_name = {Path(o.source).name: o for o in outcomes}
    assert sorted(by_name) == ["export.Csv", "notes.txt"]
    assert by_name["export.Csv"].status == "processed", by_name["export.Csv"]
    # AND the other upload is rejected with a one-line reason naming its type, a ledger
    # record and a failure event; it stays where it was
    rejected = by_name["notes.txt"]
    assert rejected.status == "rejected"
    assert rejected.error == "unsupported file type: .txt (expected .csv or .csv.gz)"
    assert (raw / "notes.txt").read_text() == "hello"
    key = "raw/notes.txt"
    version = runtime.store.version_of(runtime.store.path_for(key))
    correlation_id = correlation_id_for(runtime.store.bucket, key, version)
    record = runtime.ports.ledger.get(f"ingest:object:{correlation_id}")
    assert record is not None and record.status == "completed"
    assert record.result["status"] == "rejected"
    assert record.result["event"]["error_code"] == "unsupported_file_type"
    alerts = [
        d for d in runtime.bus.deliveries_for(correlation_id, after_id=0) if d["target"] == "alert"
    ]
    assert [d["status"] for d in alerts] == ["delivered"]


# --------------------------------------------------------------------------- processes
def _start_watch(workspace: Path, crash: list[str] | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, str(CRASH_ENTRY), *(crash or []), "--"]
    return subprocess.Popen(
        [*command, "watch", "-w", str(workspace), "--json", "--settle", "0.3"],
        env=subprocess_env(workspace),
        cwd=workspace.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_watch_resumes_a_crashed_run_then_processes_new_files_and_stops_cleanly(
    signum: int, workspace: Path, tmp_path: Path
) -> None:
    first = make_input(tmp_path / "first.csv", seed=1)
    crashed = run_cli(
        ["run", str(first), "-w", str(workspace), "--json"],
        workspace,
        crash=["--kill", BUS_PUBLISH, "--nth", "1", "--when", "after"],
    )
    assert crashed.returncode == -signal.SIGKILL  # the upload event waits in the outbox

    proc = _start_watch(workspace)
    try:
        wait_for(lambda: len(report_emails(workspace)) == 1, "the resumed run's email")
        second = make_input(tmp_path / "second.csv", seed=2)
        shutil.copy(second, workspace / "bucket" / "raw" / "second.csv")
        wait_for(lambda: len(report_emails(workspace)) == 2, "the new file's email")
    finally:
        code, stdout, stderr = _stop(proc, signum)

    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert [(Path(o["source"]).name, o["status"]) for o in lines] == [("second.csv", "processed")]


def test_watch_killed_mid_ingest_restarts_and_finishes_exactly_once(
    workspace: Path, tmp_path: Path
) -> None:
    source = make_input(tmp_path / "vitals.csv")
    raw = workspace / "bucket" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(source, raw / source.name)  # there before the watcher starts: caught up

    dying = _start_watch(workspace, crash=["--kill", LEDGER_COMPLETE, "--nth", "1"])
    dying.communicate(timeout=DEADLINE)
    assert dying.returncode == -signal.SIGKILL

    proc = _start_watch(workspace)
    try:
        wait_for(lambda: len(report_emails(workspace)) == 1, "the email after the restart")
    finally:
        code, _, stderr = _stop(proc, signal.SIGTERM)
    assert code == 0, stderr[-2000:]
    assert_exactly_once(workspace, source)
    assert os.path.getsize(raw / source.name) == source.stat().st_size


def test_watcher_survives_a_failing_outbox_and_publishes_once_it_is_back(
    settings: Settings, workspace: Path, tmp_path: Path
) -> None:
    plan = FaultPlan()
    runtime = build_faulty(settings, plan)
    outcomes: list[FileOutcome] = []
    watcher = RawWatcher(runtime, settle_seconds=0.2, poll_seconds=0.05, on_outcome=outcomes.append)
    plan.arm("bus.publish", lambda: TransientError("database is locked"), times=2)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        source = make_input(tmp_path / "vitals.csv")
        raw = workspace / "bucket" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, raw / "vitals.csv")
        wait_for(lambda: len(outcomes) >= 1, "the outcome after the outbox recovered")
    finally:
        watcher.stop()
        thread.join(timeout=30)
        runtime.close()
    assert not thread.is_alive()
    assert plan.hits["bus.publish"] == 2
    assert [o.status for o in outcomes] == ["processed"]
    assert_exactly_once(workspace, source)
