"""A run killed while its chunk workers are alive: they end with it, and the next run finds
no folder of it. And Ctrl-C at `healthpipe watch` while they work: the step in hand, theirs
included, finishes before the watcher stops.

GIVEN a file ingested by the chunked engine on 2 worker processes (3 chunks)
WHEN the run is killed with SIGKILL as the reduce step starts (the workers have staged every
chunk and wait for their next task), as the OOM killer or a container's stop kills it
THEN no process it started is left within a few seconds (before, the workers waited on their
call queue forever, each with its interpreter and DuckDB: nothing sends them end-of-file), and
the next run processes the file exactly once and removes the work folder the killed run left
under the workspace's tmp/ (before, every killed run left its chunks and spill files there).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from rel_helpers import (
    CRASH_ENTRY,
    assert_exactly_once,
    db_rows,
    make_input,
    run_cli,
    run_in_process,
    subprocess_env,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the run's processes in /proc"
)

SETTINGS = "chunked_threshold_mb = 0\nchunk_mb = 1\n"  # a 2.3 MB file: 3 chunks of 1 MB
REDUCE_STARTS = ["--kill", "healthpipe.dataops.chunked.local:_run_all", "--nth", "2"]
GRACE_SECONDS = 10.0


class RunFolder(NamedTuple):
    here: Path
    source: Path
    config: Path
    workspace: Path


def processes_in(folder: Path) -> list[int]:
    """The processes whose working directory is `folder` (the killed run's, which its
    children inherit), other than this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == folder:
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def left_after(folder: Path, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := processes_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def chunked_input(tmp_path: Path, rows: int = 40_000, settings: str = SETTINGS) -> RunFolder:
    """A folder for one run: the input, its settings file (the run's working directory
    finds it too) and the workspace in it."""
    here = tmp_path / "run"
    here.mkdir()
    config = here / "healthpipe.toml"
    config.write_text(settings, encoding="utf-8")
    return RunFolder(here, make_input(here / "vitals.csv", rows=rows), config, here / "ws")


def test_a_killed_chunked_run_leaves_no_worker_and_no_work_folder(tmp_path: Path) -> None:
    here, source, config, workspace = chunked_input(tmp_path)
    args = ["run", str(source), "-w", str(workspace), "--workers", "2", "--config", str(config)]

    crashed = run_cli([*args, "--json"], workspace, crash=REDUCE_STARTS)

    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    orphans = left_after(here.resolve(), GRACE_SECONDS)
    for pid in orphans:  # do not leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert orphans == [], f"workers of the killed run still running after {GRACE_SECONDS} s"
    left = sorted(p.name for p in (workspace / "tmp").iterdir())
    assert [name for name in left if name.startswith("ingest-")], left  # what the kill left

    rerun = run_in_process(args, workspace)

    assert rerun.returncode == 0, rerun.stdout
    assert_exactly_once(workspace, source)
    assert sorted((workspace / "tmp").iterdir()) == []


def test_ctrl_c_at_watch_lets_the_chunked_step_in_hand_finish(tmp_path: Path) -> None:
    # GIVEN a watcher started as a shell starts a command (a process group of its own) and
    # a file it ingests in 3 chunks on 2 workers
    here, source, config, workspace = chunked_input(tmp_path)
    (workspace / "bucket" / "raw").mkdir(parents=True)
    args = ["watch", "-w", str(workspace), "--workers", "2", "--config", str(config)]
    watcher = subprocess.Popen(
        [sys.executable, str(CRASH_ENTRY), "--", *args, "--json", "--settle", "0.3"],
        env=subprocess_env(workspace),
        cwd=here,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        shutil.copy(source, workspace / "bucket" / "raw" / source.name)
        # WHEN Ctrl-C reaches the group while the workers stage the chunks
        deadline = time.monotonic() + 60
        while len(processes_in(here.resolve())) < 3 and time.monotonic() < deadline:
            if watcher.poll() is not None:
                break
            time.sleep(0.05)  # the watcher, the resource tracker, then the first worker
        assert watcher.poll() is None, watcher.communicate()
        os.killpg(watcher.pid, signal.SIGINT)
        _, stderr = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()
    # THEN the ingest in hand finished (one attempt, no failure) and the watcher stopped
    assert watcher.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    deliveries = "SELECT target, status, attempts, last_error FROM deliveries ORDER BY id"
    assert db_rows(workspace, deliveries)[0] == ("ingest", "delivered", 1, None)
    assert left_after(here.resolve(), GRACE_SECONDS) == []
    # AND the next run finishes the file, exactly once
    rerun = run_in_process(["run", str(source), "-w", str(workspace)], workspace)
    assert rerun.returncode == 0, rerun.stdout
    assert_exactly_once(workspace, source)
